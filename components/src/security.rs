//! The security model: every node has an identity (its name and role, from its certificate
//! under mutual TLS); an access-control policy says which role may send which message family
//! to which role; messages from unauthenticated or unauthorized senders, and replication
//! traffic that must be encrypted but is not, are refused before a component sees them.
//!
//! [`Policy::admit`] is the receiving side's decision (a TLS-terminating sidecar's). The
//! simulator applies it to every delivery when a scenario has `[security]`; the driver's mTLS
//! (issue #10) is where it will run for real.

use crate::config::{self, Checked};
use crate::context::NodeId;
use crate::msg::Msg;
use serde::Deserialize;

/// What a message is, for the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Request,
    Response,
    Store,
    StoreReply,
    Repl,
    Mirror,
    Session,
    Archive,
    Scaler,
    Monitor,
}

impl Family {
    pub const ALL: [Family; 10] = [
        Family::Request,
        Family::Response,
        Family::Store,
        Family::StoreReply,
        Family::Repl,
        Family::Mirror,
        Family::Session,
        Family::Archive,
        Family::Scaler,
        Family::Monitor,
    ];

    pub fn of(msg: &Msg) -> Family {
        match msg {
            Msg::Request(_) => Family::Request,
            Msg::Response(_) => Family::Response,
            Msg::Store(_) => Family::Store,
            Msg::StoreReply(_) => Family::StoreReply,
            Msg::Repl(_) => Family::Repl,
            Msg::Mirror(_) => Family::Mirror,
            Msg::Session(_) => Family::Session,
            Msg::Archive(_) => Family::Archive,
            Msg::Scaler(_) => Family::Scaler,
            Msg::Monitor(_) => Family::Monitor,
            // The platform's notices are not a peer's messages; the kernel never checks them.
            Msg::Refused(inner) => Family::of(inner),
            Msg::Reset => Family::Response,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Request => "request",
            Family::Response => "response",
            Family::Store => "store",
            Family::StoreReply => "store_reply",
            Family::Repl => "repl",
            Family::Mirror => "mirror",
            Family::Session => "session",
            Family::Archive => "archive",
            Family::Scaler => "scaler",
            Family::Monitor => "monitor",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// The role of a sender that did not authenticate (the public's users, or anyone without a
/// certificate of this cluster).
pub const ANONYMOUS: &str = "anonymous";

/// One grant: `from` may send `messages` to `to` (roles, or `anonymous`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    pub from: String,
    pub to: String,
    pub messages: Vec<Family>,
}

/// The twin's designed flows: what its components send each other, and nothing more.
pub fn designed_flows() -> Vec<Allow> {
    use Family::*;
    let g = |from: &str, to: &str, m: &[Family]| Allow {
        from: from.into(),
        to: to.into(),
        messages: m.to_vec(),
    };
    vec![
        // The users reach the gateways only, without a certificate.
        g(ANONYMOUS, "gateway", &[Request]),
        g("gateway", "client", &[Response]),
        // The register workload is a database client inside the cluster (Jepsen's).
        g("registers", "store", &[Store]),
        g("store", "registers", &[StoreReply, Repl]),
        g("gateway", "service", &[Request]),
        g("service", "gateway", &[Response]),
        g("service", "store", &[Store]),
        g("store", "service", &[StoreReply, Repl]),
        g("store", "store", &[Repl]),
        g("orchestrator", "store", &[Repl]),
        g("orchestrator", "orchestrator", &[Repl]),
        g("store", "orchestrator", &[Repl]),
        g("orchestrator", "service", &[Repl]),
        g("mirror-job", "store", &[Mirror]),
        g("store", "mirror-job", &[Mirror]),
        g("mirror-job", "mirror-copy", &[Mirror]),
        g("mirror-copy", "mirror-job", &[Mirror]),
        g("resharder", "store", &[Repl, Store]),
        g("store", "resharder", &[Repl, StoreReply]),
        g("resharder", "reshard-target", &[Repl, Store]),
        g("reshard-target", "resharder", &[Repl, StoreReply]),
        g("store", "reshard-target", &[Repl]),
        g("resharder", "service", &[Repl]),
        g("reshard-target", "service", &[StoreReply, Repl]),
        g("service", "reshard-target", &[Store]),
        g("archiver", "store", &[Archive, Mirror]),
        g("store", "archiver", &[Archive, Mirror]),
        g("session-client", "session-node", &[Session]),
        g("session-node", "session-client", &[Session]),
        g("session-node", "session-node", &[Session]),
        g("session-admin", "session-node", &[Session]),
        g("session-node", "session-admin", &[Session]),
        g("control-plane", "gateway", &[Scaler]),
        g("control-plane", "service", &[Scaler]),
        g("service", "control-plane", &[Scaler]),
        g("monitor", "*", &[Monitor]),
        g("*", "monitor", &[Monitor]),
        g("monitor", "control-plane", &[Scaler]),
        g("control-plane", "monitor", &[Scaler]),
    ]
}

/// `[security]` of a scenario.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Mutual TLS between nodes: every node but those listed in `without_certificate` holds a
    /// certificate for its name and role; its messages are authenticated and encrypted.
    pub mtls: bool,
    /// Node selectors (names, `prefix-*`, `zone:NAME`) of nodes without a certificate: they
    /// can only be anonymous, and nothing they send or receive is encrypted.
    pub without_certificate: Vec<String>,
    /// Message families refused when they arrive unencrypted (replication, by default).
    pub require_encrypted: Vec<Family>,
    /// Grant the twin's designed flows ([`designed_flows`]) before `allow`.
    pub designed_flows: bool,
    /// Further grants (`from`/`to` are roles, `anonymous`, or `*` for any).
    pub allow: Vec<Allow>,
    /// Refuse what the policy does not admit (false: audit only, count and deliver).
    pub enforce: bool,
    /// Planted bug: authenticate a sender by the identity it claims, not by its certificate.
    #[cfg(feature = "planted-bugs")]
    pub bug_trust_claimed_identity: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            mtls: true,
            without_certificate: Vec::new(),
            require_encrypted: vec![Family::Repl, Family::Mirror],
            designed_flows: true,
            allow: Vec::new(),
            enforce: true,
            #[cfg(feature = "planted-bugs")]
            bug_trust_claimed_identity: false,
        }
    }
}

impl SecurityConfig {
    /// Ranges: at most 1,000 grants, each with at least one message family.
    pub fn validate(&self) -> Checked {
        config::count("allow", self.allow.len() as u64, 0, 1_000)?;
        for a in &self.allow {
            config::rule(
                !a.messages.is_empty(),
                "allow.messages",
                "name at least one family",
            )?;
        }
        Ok(())
    }

    fn grants(&self) -> Vec<Allow> {
        let mut v = if self.designed_flows {
            designed_flows()
        } else {
            Vec::new()
        };
        v.extend(self.allow.iter().cloned());
        v
    }
}

/// A node as the security layer knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub role: String,
    /// Holds a certificate of this cluster.
    pub certified: bool,
}

/// Why a message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    /// The sender could not prove the identity it claims, and anonymous senders may not send
    /// this.
    Unauthenticated,
    /// The sender's role may not send this family to the receiver's role.
    Unauthorized,
    /// The family must be encrypted and this arrived in the clear.
    Unencrypted,
}

/// The compiled policy over the plan's nodes.
#[derive(Clone, Debug)]
pub struct Policy {
    nodes: Vec<Identity>,
    roles: Vec<String>,
    /// Per node, its role's index in `roles`.
    role_of: Vec<usize>,
    /// [from role][to role] -> family bits.
    allowed: Vec<u16>,
    anonymous: usize,
    require_encrypted: u16,
    mtls: bool,
    pub enforce: bool,
    trust_claimed: bool,
}

impl Policy {
    /// The policy for nodes `nodes` (by id) under `config`.
    pub fn new(config: &SecurityConfig, nodes: Vec<Identity>) -> Policy {
        let mut roles: Vec<String> = vec![ANONYMOUS.to_string()];
        for n in &nodes {
            if !roles.contains(&n.role) {
                roles.push(n.role.clone());
            }
        }
        let index = |r: &str| roles.iter().position(|x| x == r);
        let role_of = nodes
            .iter()
            .map(|n| index(&n.role).expect("listed"))
            .collect();
        let r = roles.len();
        let mut allowed = vec![0u16; r * r];
        for g in config.grants() {
            let bits = g.messages.iter().fold(0, |b, f| b | f.bit());
            // `*` is any role that authenticated: never `anonymous`.
            let pick = |name: &str| -> Vec<usize> {
                if name == "*" {
                    (1..r).collect()
                } else {
                    index(name).into_iter().collect()
                }
            };
            for a in pick(&g.from) {
                for b in pick(&g.to) {
                    allowed[a * r + b] |= bits;
                }
            }
        }
        let require_encrypted = config.require_encrypted.iter().fold(0, |b, f| b | f.bit());
        #[cfg(feature = "planted-bugs")]
        let trust_claimed = config.bug_trust_claimed_identity;
        #[cfg(not(feature = "planted-bugs"))]
        let trust_claimed = false;
        Policy {
            nodes,
            roles,
            role_of,
            allowed,
            anonymous: 0,
            require_encrypted,
            mtls: config.mtls,
            enforce: config.enforce,
            trust_claimed,
        }
    }

    pub fn role(&self, node: NodeId) -> &str {
        &self.nodes[node as usize].role
    }

    /// Whether `sender` (who really sent it) proves the identity `claimed` under mTLS.
    fn authenticated(&self, sender: NodeId, claimed: NodeId) -> bool {
        let certified = self.mtls && self.nodes[sender as usize].certified;
        // Only the claimed identity's certificate could prove it; a certificate of another
        // node proves the other node.
        certified && (sender == claimed || self.trust_claimed)
    }

    fn allows(&self, from_role: usize, to: NodeId, family: Family) -> bool {
        let r = self.roles.len();
        self.allowed[from_role * r + self.role_of[to as usize]] & family.bit() != 0
    }

    fn encrypted(&self, sender: NodeId, to: NodeId) -> bool {
        self.mtls && self.nodes[sender as usize].certified && self.nodes[to as usize].certified
    }

    /// Who the receiver sees as the sender of an admitted message: the identity claimed only
    /// when the sender proved it; otherwise the connection's real peer.
    pub fn seen_sender(&self, sender: NodeId, claimed: NodeId) -> NodeId {
        if self.authenticated(sender, claimed) {
            claimed
        } else {
            sender
        }
    }

    /// The receiver's decision on a message `sender` sent to `to`, claiming to be `claimed`.
    pub fn admit(
        &self,
        sender: NodeId,
        claimed: NodeId,
        to: NodeId,
        family: Family,
    ) -> Result<(), Refusal> {
        let authenticated = self.authenticated(sender, claimed);
        let role = if authenticated {
            self.role_of[claimed as usize]
        } else {
            self.anonymous
        };
        if !self.allows(role, to, family) {
            return Err(if authenticated {
                Refusal::Unauthorized
            } else {
                Refusal::Unauthenticated
            });
        }
        if self.require_encrypted & family.bit() != 0 && !self.encrypted(sender, to) {
            return Err(Refusal::Unencrypted);
        }
        Ok(())
    }

    /// The ground truth a checker judges by, independent of how [`Policy::admit`] decides:
    /// the message's real sender, its real role and the link's real encryption. A message
    /// served that this refuses is a hole.
    /// `seen` is who the receiver's component was told the sender is.
    pub fn violation(
        &self,
        sender: NodeId,
        claimed: NodeId,
        seen: NodeId,
        to: NodeId,
        family: Family,
    ) -> Option<Refusal> {
        if seen != sender {
            return Some(Refusal::Unauthenticated); // served as someone it is not
        }
        // A sender that did not present its own identity is anonymous, whatever it holds.
        let certified = self.mtls && self.nodes[sender as usize].certified && sender == claimed;
        let role = if certified {
            self.role_of[sender as usize]
        } else {
            self.anonymous
        };
        if !self.allows(role, to, family) {
            return Some(if certified {
                Refusal::Unauthorized
            } else {
                Refusal::Unauthenticated
            });
        }
        if self.require_encrypted & family.bit() != 0 && !self.encrypted(sender, to) {
            return Some(Refusal::Unencrypted);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(config: &SecurityConfig) -> Policy {
        let id = |role: &str, certified: bool| Identity {
            role: role.into(),
            certified,
        };
        // 0 client (no certificate), 1 gateway, 2 service, 3 store, 4 store, 5 monitor.
        Policy::new(
            config,
            vec![
                id("client", false),
                id("gateway", true),
                id("service", true),
                id("store", true),
                id("store", true),
                id("monitor", true),
            ],
        )
    }

    #[test]
    fn designed_flows_pass_and_each_attack_is_refused_for_its_reason() {
        let p = policy(&SecurityConfig::default());
        assert_eq!(
            p.admit(0, 0, 1, Family::Request),
            Ok(()),
            "users are anonymous"
        );
        assert_eq!(p.admit(2, 2, 3, Family::Store), Ok(()));
        assert_eq!(p.admit(3, 3, 4, Family::Repl), Ok(()));
        // A client cannot reach a store; a gateway may not write to one; a gateway claiming
        // to be a service proves only itself.
        assert_eq!(
            p.admit(0, 0, 3, Family::Store),
            Err(Refusal::Unauthenticated)
        );
        assert_eq!(p.admit(1, 1, 3, Family::Store), Err(Refusal::Unauthorized));
        assert_eq!(
            p.admit(1, 2, 3, Family::Store),
            Err(Refusal::Unauthenticated)
        );
        assert_eq!(
            p.violation(1, 2, 2, 3, Family::Store),
            Some(Refusal::Unauthenticated)
        );
        // Admitted as anonymous (a request to a gateway), and served as from its real peer.
        assert_eq!(p.seen_sender(2, 0), 2);
        assert_eq!(p.admit(2, 0, 1, Family::Request), Ok(()));
        assert_eq!(p.violation(2, 0, 2, 1, Family::Request), None);
    }

    #[test]
    fn replication_in_the_clear_is_refused_when_encryption_is_required() {
        let plain = SecurityConfig {
            mtls: false,
            allow: vec![Allow {
                from: ANONYMOUS.into(),
                to: "store".into(),
                messages: vec![Family::Repl],
            }],
            ..SecurityConfig::default()
        };
        let p = policy(&plain);
        assert_eq!(p.admit(3, 3, 4, Family::Repl), Err(Refusal::Unencrypted));
        let relaxed = SecurityConfig {
            require_encrypted: vec![],
            ..plain
        };
        assert_eq!(policy(&relaxed).admit(3, 3, 4, Family::Repl), Ok(()));
    }
}
