//! `minitwin certs`: a development CA and every node's certificate for a cluster's `[tls]`.

use crate::cli::CertsArgs;
use minitwin_driver::tls::{dev_certs, node_dns_name};
use minitwin_sim::cluster::Cluster;
use std::path::Path;

pub fn main(args: CertsArgs) -> u8 {
    match certs(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("minitwin certs: {e}");
            2
        }
    }
}

/// Writes `text` to `path`; keys readable by their owner only.
fn write(path: &Path, text: &str, secret: bool) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let _ = secret;
    Ok(())
}

fn certs(args: &CertsArgs) -> Result<(), String> {
    let cluster = Cluster::load(&args.config)?;
    let domain = cluster.tls.as_ref().map_or_else(
        || format!("{}.minitwin", cluster.scenario.name),
        |t| t.domain.clone(),
    );
    let out = match (&args.out, &cluster.tls) {
        (Some(o), _) => o.clone(),
        (None, Some(t)) => t.dir.clone(),
        (None, None) => {
            return Err(format!(
                "{} has no [tls] table: add one (dir = \"certs\") or give --out",
                args.config.display()
            ))
        }
    };
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let nodes: Vec<(String, String)> = cluster
        .nodes
        .iter()
        .filter(|n| n.role.is_some())
        .map(|n| (n.name.clone(), n.plan_role.to_string()))
        .collect();
    let made = dev_certs(&domain, &nodes)?;
    write(&out.join("ca.pem"), &made.ca_cert_pem, false)?;
    write(&out.join("ca.key"), &made.ca_key_pem, true)?;
    for (name, cert, key) in &made.nodes {
        write(&out.join(format!("{name}.pem")), cert, false)?;
        write(&out.join(format!("{name}.key")), key, true)?;
    }
    say!(
        "wrote a development CA and {} node certificates to {} (each for <node>.{domain}, e.g. {})",
        made.nodes.len(),
        out.display(),
        node_dns_name(&nodes[0].0, &domain)
    );
    Ok(())
}
