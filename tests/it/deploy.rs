//! The deploy files: the Dockerfile, the compose file and the Kubernetes manifests parse, every
//! `minitwin` command in them uses flags the binary has and names nodes its cluster file has,
//! the ConfigMap carries the cluster and scenario files verbatim, and the HPA has the policy
//! of the scenario's autoscaler.

use crate::{minitwin, root};
use minitwin_components::scaler::MetricTarget;
use minitwin_sim::cluster::{Cluster, ControlPlane};
use std::collections::BTreeSet;
use yaml_rust2::{Yaml, YamlLoader};

fn yaml(path: &str) -> Vec<Yaml> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The long flags `minitwin SUB --help` lists.
fn flags_of(sub: &str) -> BTreeSet<String> {
    let out = minitwin(&[sub, "--help"]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.trim_end_matches(',').to_string())
        .collect()
}

/// The words of a container command (a list, or `sh -c "exec minitwin ..."`) from `minitwin`
/// on.
fn minitwin_words(command: &Yaml) -> Vec<String> {
    let words: Vec<String> = command
        .as_vec()
        .unwrap_or_else(|| panic!("a command list: {command:?}"))
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    let words = if words.first().map(String::as_str) == Some("sh") {
        words[2].split_whitespace().map(str::to_string).collect()
    } else {
        words
    };
    let start = words
        .iter()
        .position(|w| w == "minitwin")
        .map_or(0, |i| i + 1);
    words[start..].to_vec()
}

fn check_flags(words: &[String], what: &str) {
    let known = flags_of(&words[0]);
    for w in words.iter().filter(|w| w.starts_with("--")) {
        assert!(
            known.contains(w),
            "{what}: `minitwin {}` has no flag {w}",
            words[0]
        );
    }
}

#[test]
fn the_dockerfile_is_multi_stage_and_runs_the_binary() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "a build stage and a slim image: {froms:?}");
    assert!(froms[0].contains(" AS build") && froms[1].contains("slim"));
    assert!(text.contains("cargo build --release --locked --bin minitwin"));
    assert!(text.contains("ENTRYPOINT [\"minitwin\"]"));
}

#[test]
fn the_compose_file_runs_every_node_of_its_cluster_with_real_flags() {
    let doc = &yaml("deploy/compose/compose.yaml")[0];
    let cluster = Cluster::load(&root().join("deploy/compose/cluster.toml")).unwrap();
    let services = doc["services"].as_hash().unwrap();
    let mut named = BTreeSet::new();
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        let words = minitwin_words(&svc["command"]);
        assert_eq!(words[0], "node", "{name}");
        check_flags(&words, name);
        let config = &words[words.iter().position(|w| w == "--config").unwrap() + 1];
        assert_eq!(config, "/etc/minitwin/deploy/compose/cluster.toml");
        let node = &words[words.iter().position(|w| w == "--name").unwrap() + 1];
        assert_eq!(node, name, "a container is named after its node");
        cluster.pick(Some(node), None, 0).unwrap();
        named.insert(node.clone());
    }
    let running: BTreeSet<String> = cluster
        .nodes
        .iter()
        .filter(|n| n.runs)
        .map(|n| n.name.clone())
        .collect();
    assert_eq!(named, running, "every running node has its container");
}

#[test]
fn the_kubernetes_manifests_parse_use_real_flags_and_match_the_scenario() {
    let docs = yaml("deploy/k8s/minitwin.yaml");
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for k in [
        "ConfigMap",
        "Deployment",
        "StatefulSet",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(k), "no {k}: {kinds:?}");
    }
    // The ConfigMap carries the files a test can read, verbatim.
    let cm = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("ConfigMap"))
        .unwrap();
    for file in ["cluster.toml", "scenario.toml"] {
        let on_disk = std::fs::read_to_string(root().join("deploy/k8s").join(file)).unwrap();
        assert_eq!(
            cm["data"][file].as_str().unwrap(),
            on_disk,
            "{file} drifted"
        );
    }
    let cluster = Cluster::load(&root().join("deploy/k8s/cluster.toml")).unwrap();
    let mut roles = BTreeSet::new();
    let mut deployed = BTreeSet::new();
    for d in docs
        .iter()
        .filter(|d| matches!(d["kind"].as_str(), Some("Deployment" | "StatefulSet")))
    {
        let name = d["metadata"]["name"].as_str().unwrap();
        let replicas = d["spec"]["replicas"].as_i64().unwrap() as usize;
        let container = &d["spec"]["template"]["spec"]["containers"][0];
        let words = minitwin_words(&container["command"]);
        check_flags(&words, name);
        let role = &words[words.iter().position(|w| w == "--role").unwrap() + 1];
        // Every replica's index names a node of the plan.
        for i in 0..replicas {
            deployed.insert(cluster.pick(None, Some(role), i).unwrap().name.clone());
        }
        roles.insert(role.clone());
    }
    // Every node the cluster runs from the start is deployed (the twin's control plane is
    // not: the file must say so, or the gateway would wait for its endpoints for ever).
    for n in cluster.nodes.iter().filter(|n| n.runs) {
        assert!(
            deployed.contains(&n.name),
            "{} runs but is not deployed",
            n.name
        );
    }
    assert_eq!(cluster.control_plane, ControlPlane::External);
    for role in ["gateway", "service", "store", "orchestrator", "session"] {
        assert!(roles.contains(role), "{role} is deployed");
    }
    // The HPA is the scenario's autoscaler, and a pod requests one core per worker.
    let auto = cluster
        .scenario
        .topology
        .autoscaler
        .as_ref()
        .expect("the k8s scenario autoscales");
    let [MetricTarget::Cpu {
        target_utilization_percent,
    }] = auto.metrics[..]
    else {
        panic!("the k8s scenario scales on CPU alone: {:?}", auto.metrics);
    };
    let workers = cluster.scenario.topology.services.config.workers;
    let hpa = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("HorizontalPodAutoscaler"))
        .unwrap();
    assert_eq!(
        hpa["spec"]["minReplicas"].as_i64(),
        Some(i64::from(auto.min_replicas))
    );
    assert_eq!(
        hpa["spec"]["maxReplicas"].as_i64(),
        Some(i64::from(auto.max_replicas))
    );
    let target = &hpa["spec"]["metrics"][0]["resource"];
    assert_eq!(target["name"].as_str(), Some("cpu"));
    assert_eq!(
        target["target"]["averageUtilization"].as_i64(),
        Some(i64::from(target_utilization_percent))
    );
    let services = docs
        .iter()
        .find(|d| {
            d["kind"].as_str() == Some("StatefulSet")
                && d["metadata"]["name"].as_str() == Some("service")
        })
        .unwrap();
    let cpu = services["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
        .as_str()
        .unwrap();
    assert_eq!(
        cpu,
        workers.to_string(),
        "one core per worker, as the twin's HPA counts"
    );
    let pdbs = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("PodDisruptionBudget"))
        .count();
    assert!(pdbs >= 1);
}
