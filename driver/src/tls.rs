//! Mutual TLS between nodes (rustls, ring). Every node holds a certificate its cluster's CA
//! signed for one DNS name, `<node name>.<cluster domain>`: that name is the node's identity,
//! whatever its hello says. The listening side requires a client certificate of the cluster's
//! CA (no certificate, or one of another cluster: the handshake fails, the connection is
//! refused and counted); the dialling side checks that the peer's certificate names the node
//! it meant to reach. [`Guard`] then applies the twin's access policy
//! ([`minitwin_components::security::Policy`]) to every message by the sender's proven role.
//!
//! [`dev_certs`] makes a development CA and node certificates (`minitwin certs`).

use minitwin_components::security::{Family, Identity, Policy, Refusal, SecurityConfig};
use minitwin_components::NodeId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A development CA and every node's certificate and key, PEM.
pub struct DevCerts {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    /// (node name, certificate, key).
    pub nodes: Vec<(String, String, String)>,
}

/// The DNS name a node's certificate is for.
pub fn node_dns_name(node: &str, domain: &str) -> String {
    format!("{node}.{domain}")
}

/// A CA for `domain` and a certificate for each of `nodes` (name, role), valid for TLS server
/// and client authentication; the role is the certificate's organizational unit (for people:
/// the policy reads the role from the cluster's plan by the certified name).
pub fn dev_certs(domain: &str, nodes: &[(String, String)]) -> Result<DevCerts, String> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let err = |e: rcgen::Error| e.to_string();
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("minitwin development CA for {domain}"),
    );
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let mut out = DevCerts {
        ca_cert_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        nodes: Vec::new(),
    };
    for (name, role) in nodes {
        let mut p = CertificateParams::new(vec![node_dns_name(name, domain)]).map_err(err)?;
        p.distinguished_name.push(DnType::CommonName, name.clone());
        p.distinguished_name
            .push(DnType::OrganizationalUnitName, role.clone());
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().map_err(err)?;
        let cert = p.signed_by(&key, &ca_cert, &ca_key).map_err(err)?;
        out.nodes
            .push((name.clone(), cert.pem(), key.serialize_pem()));
    }
    Ok(out)
}

/// A node's TLS: its certificate, the cluster's CA, and the names of every node by id.
pub struct NodeTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub connector: tokio_rustls::TlsConnector,
    domain: String,
    names: Vec<String>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl NodeTls {
    /// From PEM text: the CA's certificate, this node's certificate and key; `names` are the
    /// cluster's node names by id.
    pub fn new(
        ca_pem: &str,
        cert_pem: &str,
        key_pem: &str,
        domain: &str,
        names: Vec<String>,
    ) -> Result<NodeTls, String> {
        let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes())
            .map_err(|e| format!("the CA certificate: {e}"))?;
        let chain = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| format!("the node's certificate: {e}"))?];
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| format!("the node's key: {e}"))?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca)
            .map_err(|e| format!("the CA certificate: {e}"))?;
        let roots = Arc::new(roots);
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
                .build()
                .map_err(|e| format!("client verifier: {e}"))?;
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| format!("the node's certificate and key: {e}"))?;
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the node's certificate and key: {e}"))?;
        Ok(NodeTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
            domain: domain.to_string(),
            names,
        })
    }

    /// Reads the three PEM files.
    pub fn load(
        ca: &Path,
        cert: &Path,
        key: &Path,
        domain: &str,
        names: Vec<String>,
    ) -> Result<NodeTls, String> {
        let read =
            |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
        NodeTls::new(&read(ca)?, &read(cert)?, &read(key)?, domain, names)
    }

    /// The name the dialler expects `peer`'s certificate to be for.
    pub fn server_name(&self, peer: NodeId) -> Option<ServerName<'static>> {
        let name = self.names.get(peer as usize)?;
        ServerName::try_from(node_dns_name(name, &self.domain)).ok()
    }

    /// The node a verified peer certificate names: `claimed` if it is for that node, else the
    /// node it is for (it proves that one, not the claim), None if it names none of ours.
    pub fn proven(&self, cert: &CertificateDer<'_>, claimed: NodeId) -> Option<NodeId> {
        let ee = webpki::EndEntityCert::try_from(cert).ok()?;
        let valid_for = |id: usize| {
            let name = node_dns_name(&self.names[id], &self.domain);
            ServerName::try_from(name)
                .is_ok_and(|sn| ee.verify_is_valid_for_subject_name(&sn).is_ok())
        };
        if (claimed as usize) < self.names.len() && valid_for(claimed as usize) {
            return Some(claimed);
        }
        (0..self.names.len())
            .find(|&i| valid_for(i))
            .map(|i| i as NodeId)
    }
}

/// The access policy on the receiving side, and what it refused.
pub struct Guard {
    policy: Policy,
    me: NodeId,
    /// The id the policy knows a sender without a proven identity by (anonymous).
    anonymous: NodeId,
    /// Refusals: unauthenticated (handshakes included), unauthorized, unencrypted.
    pub refused: [AtomicU64; 3],
}

impl Guard {
    /// The policy of `config` over the cluster's nodes (`roles` by id), as node `me`.
    pub fn new(config: &SecurityConfig, roles: &[String], me: NodeId) -> Guard {
        let mut ids: Vec<Identity> = roles
            .iter()
            .map(|r| Identity {
                role: r.clone(),
                certified: true,
            })
            .collect();
        ids.push(Identity {
            role: "anonymous peer".into(),
            certified: false,
        });
        Guard {
            policy: Policy::new(config, ids),
            me,
            anonymous: roles.len() as NodeId,
            refused: Default::default(),
        }
    }

    /// A connection refused at its handshake (no certificate, one of another cluster).
    pub fn refuse_handshake(&self) {
        self.refused[0].fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a message of `family` from a connection whose certificate proved `proven` and
    /// whose hello claimed `claimed` goes on to the component.
    pub fn admit(
        &self,
        proven: Option<NodeId>,
        claimed: NodeId,
        family: Family,
    ) -> Result<(), Refusal> {
        let sender = proven.unwrap_or(self.anonymous);
        let claimed = if (claimed as usize) < self.anonymous as usize {
            claimed
        } else {
            self.anonymous
        };
        let r = self.policy.admit(sender, claimed, self.me, family);
        if let Err(refusal) = r {
            let i = match refusal {
                Refusal::Unauthenticated => 0,
                Refusal::Unauthorized => 1,
                Refusal::Unencrypted => 2,
            };
            self.refused[i].fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// (metric name, count) of every refusal kind, under the twin's names.
    pub fn counts(&self) -> [(&'static str, u64); 3] {
        let n = |i: usize| self.refused[i].load(Ordering::Relaxed);
        [
            ("security_refused_unauthenticated_total", n(0)),
            ("security_refused_unauthorized_total", n(1)),
            ("security_refused_unencrypted_total", n(2)),
        ]
    }
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "NodeTls {{ domain: {:?}, nodes: {} }}",
            self.domain,
            self.names.len()
        )
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Guard {{ me: {}, refused: {:?} }}",
            self.me,
            self.counts()
        )
    }
}
