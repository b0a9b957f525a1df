//! Security rules for what a project ships besides Rust, read as data (YAML parsed, not
//! grepped line by line): workflows pin every action by commit and give their token read
//! access unless a job asks for more; Dependabot refreshes those pins and the base
//! images' digests; the development compose file publishes ports on loopback only; the
//! image's build context keeps every env file but the example out; the NetworkPolicy
//! admits each port only from the client that needs it.
//!
//! Each rule returns its findings, one sentence each: none is a pass.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use anyhow::{Context, Result, bail};
use ignore::gitignore::GitignoreBuilder;
use serde::Deserialize as _;
use serde_norway::Value;

/// Pods of one namespace, selected by the label Kubernetes sets on every namespace and
/// the `app.kubernetes.io/name` label their chart gives them.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub namespace: &'static str,
    pub name: &'static str,
}

impl Peer {
    fn describe(&self) -> String {
        format!(
            "pods app.kubernetes.io/name={} in namespace {}",
            self.name, self.namespace
        )
    }
}

/// ingress-nginx as its chart installs it: the only source of requests on `http`.
pub const INGRESS_CONTROLLER: Peer = Peer {
    namespace: "ingress-nginx",
    name: "ingress-nginx",
};
/// Prometheus as kube-prometheus-stack installs it: the only scraper of `metrics`.
pub const MONITORING: Peer = Peer {
    namespace: "monitoring",
    name: "prometheus",
};
/// The named ports of the app's pods and the one peer each admits.
pub const ADMITTED: [(&str, Peer); 2] = [("http", INGRESS_CONTROLLER), ("metrics", MONITORING)];

/// A rule: the findings in the text of one file.
pub type Rule = fn(&str) -> Result<Vec<String>>;

/// Each rule with the file of a rendered project it reads.
pub const PROJECT_RULES: [(&str, Rule); 5] = [
    (".github/workflows/ci.yml", workflow_findings),
    (".github/dependabot.yml", project_dependabot_findings),
    ("docker-compose.yml", compose_findings),
    (".dockerignore", dockerignore_findings),
    ("deploy/k8s/networkpolicy.yaml", network_policy_findings),
];

/// The findings of `rule` in the file at `path` of `project`, each naming the file.
///
/// # Errors
/// Fails if the file cannot be read or parsed.
pub fn findings_in(project: &Path, path: &str, rule: Rule) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(project.join(path))
        .with_context(|| format!("Failed to read {path}"))?;
    let findings = rule(&text).with_context(|| path.to_string())?;
    Ok(findings
        .into_iter()
        .map(|finding| format!("{path}: {finding}"))
        .collect())
}

/// Every rule of [`PROJECT_RULES`] on a rendered project.
///
/// # Errors
/// Fails with every finding.
pub fn check_project(project: &Path) -> Result<()> {
    let mut findings = Vec::new();
    for (path, rule) in PROJECT_RULES {
        findings.extend(findings_in(project, path, rule)?);
    }
    if !findings.is_empty() {
        bail!("{}", findings.join("\n"));
    }
    Ok(())
}

/// A workflow's findings: every `uses:` (steps and reusable-workflow jobs) names a full
/// commit SHA, with the version it stands for in a comment on its line (`@<sha> #
/// v4.2.2`), since a tag can be moved onto other code; actions inside the repository
/// (`./…`) are exempt. The workflow declares top-level `permissions:` granting nothing
/// above `read`, so a job that needs to write says so itself.
///
/// # Errors
/// Fails if the text is not YAML.
pub fn workflow_findings(text: &str) -> Result<Vec<String>> {
    let workflow: Value = serde_norway::from_str(text).context("the workflow is not YAML")?;
    let mut findings = Vec::new();
    match workflow.get("permissions") {
        None => findings.push("no top-level `permissions:`".to_string()),
        Some(permissions) => {
            let granted = permissions
                .as_mapping()
                .map(|scopes| {
                    scopes
                        .iter()
                        .all(|(_, level)| matches!(level.as_str(), Some("read" | "none")))
                })
                .unwrap_or(false);
            if !granted {
                findings.push(format!(
                    "top-level `permissions:` must grant read access at most: {}",
                    inline(permissions)
                ));
            }
        }
    }
    let jobs = workflow.get("jobs").and_then(Value::as_mapping);
    for (name, job) in jobs.into_iter().flatten() {
        let name = name.as_str().unwrap_or("?");
        let steps = job.get("steps").and_then(Value::as_sequence);
        let uses = job.get("uses").into_iter().chain(
            steps
                .into_iter()
                .flatten()
                .filter_map(|step| step.get("uses")),
        );
        for reference in uses {
            let reference = reference.as_str().unwrap_or_default();
            if let Some(problem) = unpinned(reference, text) {
                findings.push(format!("job `{name}`: `{reference}` {problem}"));
            }
        }
    }
    Ok(findings)
}

/// A Dependabot configuration's findings: it updates each of `ecosystems` (such as
/// `github-actions`, `docker`) at the repository's root, so pinned commits and digests are
/// refreshed rather than left to age.
///
/// # Errors
/// Fails if the text is not YAML.
pub fn dependabot_findings(text: &str, ecosystems: &[&str]) -> Result<Vec<String>> {
    let config: Value = serde_norway::from_str(text).context("the Dependabot file is not YAML")?;
    let updated: BTreeSet<&str> = config["updates"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter(|update| update["directory"].as_str() == Some("/"))
        .filter_map(|update| update["package-ecosystem"].as_str())
        .collect();
    Ok(ecosystems
        .iter()
        .filter(|ecosystem| !updated.contains(*ecosystem))
        .map(|ecosystem| format!("`{ecosystem}` at `/` is not updated"))
        .collect())
}

/// A generated project's Dependabot refreshes its actions and its base images.
///
/// # Errors
/// Fails if the text is not YAML.
pub fn project_dependabot_findings(text: &str) -> Result<Vec<String>> {
    dependabot_findings(text, &["github-actions", "docker"])
}

/// Why `reference`, a `uses:` value, is not pinned, if it is not.
fn unpinned(reference: &str, workflow: &str) -> Option<&'static str> {
    if reference.starts_with("./") {
        return None;
    }
    let Some((_, version)) = reference.rsplit_once('@') else {
        return Some("names no version");
    };
    if reference.starts_with("docker://") {
        return (!version.starts_with("sha256:")).then_some("is not pinned by digest");
    }
    let is_commit = version.len() == 40 && version.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_commit {
        return Some("is not pinned by a full commit SHA");
    }
    // The parsed value holds no comments: the version is looked for beside it.
    (!workflow.contains(&format!("{reference} # "))).then_some("has no `# <version>` comment")
}

/// A compose file's findings: every published port is bound to the loopback interface
/// (`127.0.0.1:8080:8080`, or `host_ip: 127.0.0.1`), so a development stack, Mailpit's
/// inbox included, is not reachable from the network.
///
/// # Errors
/// Fails if the text is not YAML.
pub fn compose_findings(text: &str) -> Result<Vec<String>> {
    let mut compose: Value =
        serde_norway::from_str(text).context("the compose file is not YAML")?;
    compose
        .apply_merge()
        .context("the compose file's `<<` merges")?;
    let mut findings = Vec::new();
    let services = compose.get("services").and_then(Value::as_mapping);
    for (name, service) in services.into_iter().flatten() {
        let name = name.as_str().unwrap_or("?");
        let ports = service.get("ports").and_then(Value::as_sequence);
        for port in ports.into_iter().flatten() {
            let on_loopback = match port {
                Value::String(short) => LOOPBACK
                    .iter()
                    .any(|ip| short.starts_with(&format!("{ip}:"))),
                Value::Mapping(_) => port
                    .get("host_ip")
                    .and_then(Value::as_str)
                    .is_some_and(|ip| LOOPBACK.contains(&ip)),
                _ => false,
            };
            if !on_loopback {
                findings.push(format!(
                    "service `{name}` publishes {} on every interface",
                    inline(port)
                ));
            }
        }
    }
    Ok(findings)
}

const LOOPBACK: [&str; 2] = ["127.0.0.1", "[::1]"];

/// A `.dockerignore`'s findings: the build context holds no env file (`.env`,
/// `.env.local`, `.env.production`, …) but `.env.example`, so no developer's secrets are
/// sent to a builder or copied into an image by `COPY . .`.
///
/// # Errors
/// Fails if a pattern is invalid.
pub fn dockerignore_findings(text: &str) -> Result<Vec<String>> {
    // Docker's rules read like gitignore's for files at the root of the context: later
    // lines win and `!` re-includes.
    let mut builder = GitignoreBuilder::new("");
    for line in text.lines().map(str::trim) {
        if !line.is_empty() && !line.starts_with('#') {
            builder.add_line(None, line)?;
        }
    }
    let ignored = builder.build()?;
    let mut findings = Vec::new();
    for secret in [
        ".env",
        ".env.local",
        ".env.production",
        ".env.development.local",
    ] {
        if !ignored.matched(secret, false).is_ignore() {
            findings.push(format!("`{secret}` enters the build context"));
        }
    }
    if ignored.matched(".env.example", false).is_ignore() {
        findings.push("`.env.example` is ignored too".to_string());
    }
    Ok(findings)
}

/// The findings of the NetworkPolicies in a manifest: together they select the app's
/// pods for ingress and admit exactly [`ADMITTED`], each named port from its one peer.
/// A rule without `from` admits every source, one without `ports` every port, an empty
/// `namespaceSelector` every namespace.
///
/// # Errors
/// Fails if the text is not YAML.
pub fn network_policy_findings(text: &str) -> Result<Vec<String>> {
    let mut findings = Vec::new();
    let mut admitted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut policies = 0;
    for document in serde_norway::Deserializer::from_str(text) {
        let document = Value::deserialize(document).context("the manifest is not YAML")?;
        if document.get("kind").and_then(Value::as_str) != Some("NetworkPolicy") {
            continue;
        }
        policies += 1;
        let spec = &document["spec"];
        let selects_app = spec["podSelector"]["matchLabels"]
            .get("app.kubernetes.io/name")
            .is_some();
        let types = spec["policyTypes"].as_sequence();
        let governs_ingress = types
            .into_iter()
            .flatten()
            .any(|kind| kind.as_str() == Some("Ingress"));
        if !selects_app || !governs_ingress {
            findings.push(format!(
                "a NetworkPolicy does not govern the app's ingress: podSelector {}, policyTypes {}",
                inline(&spec["podSelector"]),
                inline(&spec["policyTypes"])
            ));
        }
        for rule in spec["ingress"].as_sequence().into_iter().flatten() {
            let sources = peers(&rule["from"]);
            for port in ports(&rule["ports"]) {
                admitted.entry(port).or_default().extend(sources.clone());
            }
        }
    }
    if policies == 0 {
        findings.push("no NetworkPolicy".to_string());
    }
    let expected: BTreeMap<String, BTreeSet<String>> = ADMITTED
        .iter()
        .map(|(port, peer)| (port.to_string(), BTreeSet::from([peer.describe()])))
        .collect();
    for (port, sources) in &admitted {
        if expected.get(port) != Some(sources) {
            findings.push(format!("port `{port}` admits {sources:?}"));
        }
    }
    for (port, sources) in &expected {
        if !admitted.contains_key(port) {
            findings.push(format!(
                "port `{port}` admits nothing: expected {sources:?}"
            ));
        }
    }
    Ok(findings)
}

/// The named ports of an ingress rule's `ports`; `every port` when it lists none.
fn ports(list: &Value) -> Vec<String> {
    let ports: Vec<String> = list
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|port| match &port["port"] {
            Value::String(name) => name.clone(),
            Value::Number(number) => number.to_string(),
            _ => "every port".to_string(),
        })
        .collect();
    if ports.is_empty() {
        vec!["every port".to_string()]
    } else {
        ports
    }
}

/// An ingress rule's `from` peers, described; `everywhere` when it lists none.
fn peers(from: &Value) -> BTreeSet<String> {
    let peers: BTreeSet<String> = from
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|peer| {
            if !peer["ipBlock"].is_null() {
                return format!("ipBlock {}", inline(&peer["ipBlock"]));
            }
            let namespace = match &peer["namespaceSelector"] {
                Value::Null => Some("the policy's own namespace".to_string()),
                selector => only_label(selector, "kubernetes.io/metadata.name")
                    .map(|name| format!("namespace {name}")),
            };
            let pods = match &peer["podSelector"] {
                Value::Null => Some("all pods".to_string()),
                selector => only_label(selector, "app.kubernetes.io/name")
                    .map(|name| format!("pods app.kubernetes.io/name={name}")),
            };
            match (pods, namespace) {
                (Some(pods), Some(namespace)) => format!("{pods} in {namespace}"),
                _ => format!("a broad selector: {}", inline(peer)),
            }
        })
        .collect();
    if peers.is_empty() {
        BTreeSet::from(["everywhere".to_string()])
    } else {
        peers
    }
}

/// The value of `key` when a label selector matches on that one label alone.
fn only_label(selector: &Value, key: &str) -> Option<String> {
    let selector = selector.as_mapping()?;
    let labels = selector.get("matchLabels")?.as_mapping()?;
    if selector.len() != 1 || labels.len() != 1 {
        return None;
    }
    labels.get(key)?.as_str().map(str::to_string)
}

/// A YAML value on one line, for a finding.
fn inline(value: &Value) -> String {
    match value {
        Value::Null => "nothing".to_string(),
        Value::String(text) => format!("{text:?}"),
        Value::Mapping(mapping) => {
            let entries: Vec<String> = mapping
                .iter()
                .map(|(key, value)| format!("{}: {}", inline(key), inline(value)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED: &str = "permissions:\n  contents: read\njobs:\n  test:\n    permissions:\n      packages: write\n    steps:\n      - uses: actions/checkout@11d5960a326750d5838078e36cf38b85af677262 # v4.4.0\n      - uses: ./.github/actions/local\n";

    #[test]
    fn a_workflow_pinned_by_commit_with_read_permissions_passes() {
        assert_eq!(workflow_findings(PINNED).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn tags_branches_bare_shas_and_write_permissions_are_findings() {
        let workflow = "permissions: write-all\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v4\n      - uses: dtolnay/rust-toolchain@stable\n      - uses: docker/login-action@c94ce9fb468520275223c153574b00df6fe4bcc9\n  b:\n    uses: org/repo/.github/workflows/x.yml@main\n";

        let findings = workflow_findings(workflow).unwrap();

        assert_eq!(findings.len(), 5, "{findings:#?}");
        assert!(findings[0].contains("write-all"), "{findings:#?}");
        assert!(
            findings[3].contains("no `# <version>` comment"),
            "{findings:#?}"
        );
        assert!(findings[4].contains("job `b`"), "{findings:#?}");
    }

    #[test]
    fn a_workflow_without_permissions_is_a_finding() {
        let findings = workflow_findings("jobs: {}\n").unwrap();

        assert_eq!(findings, ["no top-level `permissions:`"]);
    }

    #[test]
    fn an_ecosystem_left_out_or_elsewhere_is_a_finding() {
        let config = "version: 2\nupdates:\n  - package-ecosystem: github-actions\n    directory: /\n  - package-ecosystem: docker\n    directory: /docker\n";

        let findings = dependabot_findings(config, &["github-actions", "docker", "cargo"]).unwrap();

        assert_eq!(
            findings,
            [
                "`docker` at `/` is not updated",
                "`cargo` at `/` is not updated"
            ]
        );
    }

    #[test]
    fn ports_published_beyond_loopback_are_findings_merged_ones_included() {
        let compose = "x-base: &base\n  ports: [\"9000:9000\"]\nservices:\n  a:\n    ports: [\"127.0.0.1:80:80\", \"8025:8025\", \"0.0.0.0:1:1\", 53]\n  b:\n    <<: *base\n  c:\n    ports:\n      - target: 80\n        published: \"80\"\n        host_ip: 127.0.0.1\n      - target: 81\n        published: \"81\"\n";

        let findings = compose_findings(compose).unwrap();

        assert_eq!(findings.len(), 5, "{findings:#?}");
        assert!(
            findings
                .iter()
                .any(|f| f.contains("`b` publishes \"9000:9000\""))
        );
        assert!(
            !findings.iter().any(|f| f.contains("127.0.0.1")),
            "{findings:#?}"
        );
    }

    #[test]
    fn env_files_must_stay_out_of_the_build_context_but_the_example() {
        assert_eq!(
            dockerignore_findings("target/\n.env*\n!.env.example\n").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(dockerignore_findings(".env\n").unwrap().len(), 3);
        assert_eq!(
            dockerignore_findings("*\n").unwrap(),
            ["`.env.example` is ignored too"]
        );
    }

    const POLICY: &str = "kind: NetworkPolicy\nspec:\n  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: shop\n  policyTypes: [Ingress]\n  ingress:\n    - from:\n        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: ingress-nginx\n          podSelector:\n            matchLabels:\n              app.kubernetes.io/name: ingress-nginx\n      ports:\n        - port: http\n    - from:\n        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: monitoring\n          podSelector:\n            matchLabels:\n              app.kubernetes.io/name: prometheus\n      ports:\n        - port: metrics\n";

    #[test]
    fn a_policy_admitting_each_port_from_its_peer_passes() {
        assert_eq!(
            network_policy_findings(POLICY).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn broad_sources_and_ports_are_findings() {
        let everyone = "kind: NetworkPolicy\nspec:\n  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: shop\n  policyTypes: [Ingress]\n  ingress:\n    - ports:\n        - port: http\n        - port: metrics\n";
        let any_namespace = POLICY.replace(
            "namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: monitoring",
            "namespaceSelector: {}",
        );
        let extra =
            format!("{POLICY}    - from:\n        - ipBlock:\n            cidr: 0.0.0.0/0\n");

        let everyone = network_policy_findings(everyone).unwrap();
        let any_namespace = network_policy_findings(&any_namespace).unwrap();
        let extra = network_policy_findings(&extra).unwrap();

        assert_eq!(everyone.len(), 2, "{everyone:#?}");
        assert!(everyone[0].contains("\"everywhere\""), "{everyone:#?}");
        assert_eq!(any_namespace.len(), 1, "{any_namespace:#?}");
        assert!(
            any_namespace[0].starts_with("port `metrics`"),
            "{any_namespace:#?}"
        );
        assert_eq!(extra.len(), 1, "{extra:#?}");
        assert!(
            extra[0].contains("`every port` admits {\"ipBlock"),
            "{extra:#?}"
        );
    }
}
