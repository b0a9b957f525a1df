//! Fast tier: every variant renders cleanly, passes the hardening rules and matches its
//! file-tree and dependency snapshots. One test case per variant and check, all on one
//! render per variant (`ci::rendered`).

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write as _,
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
};

use ci::{
    examples, hardening, render,
    rendered::{self, Rendered},
    scan,
    snapshots::{self, Snapshot},
    variant_tests,
};

variant_tests!(
    renders_without_leftover_tags,
    rendered_file_tree,
    rendered_dependencies,
    the_network_policy_admits_http_only_from_the_ingress_controller_and_metrics_only_from_monitoring,
    compose_publishes_ports_on_loopback_only,
    every_workflow_pins_actions_by_commit_sha_and_declares_permissions,
    dockerignore_keeps_every_env_file_but_the_example_out,
    dependabot_refreshes_the_pinned_actions_and_base_images,
);

fn variant(name: &str) -> Arc<Rendered> {
    rendered::variant(name).unwrap_or_else(|error| panic!("{error:#}"))
}

/// insta names the file after this binary: the snapshot must belong to this tier.
fn assert_snapshot(snapshot: &Snapshot) {
    assert_eq!(snapshot.tier, module_path!());
    insta::assert_snapshot!(snapshot.name.as_str(), &snapshot.contents);
}

fn renders_without_leftover_tags(name: &str) {
    let project = &variant(name).project;
    let verbatim = scan::Verbatim::of_template().unwrap();

    let leftovers = scan::leftover_tags(project, &verbatim).unwrap();

    let lines: Vec<String> = leftovers.iter().map(ToString::to_string).collect();
    assert!(leftovers.is_empty(), "{}", lines.join("\n"));
}

fn rendered_file_tree(name: &str) {
    let [tree, _] = snapshots::of_render(name, &variant(name).project).unwrap();

    assert_snapshot(&tree);
}

fn rendered_dependencies(name: &str) {
    let [_, dependencies] = snapshots::of_render(name, &variant(name).project).unwrap();

    assert_snapshot(&dependencies);
}

/// The findings of `rule` in the file at `path` of the variant `name`: none.
fn assert_no_findings(name: &str, path: &str, rule: hardening::Rule) {
    let findings = hardening::findings_in(&variant(name).project, path, rule).unwrap();

    assert!(findings.is_empty(), "{findings:#?}");
}

fn the_network_policy_admits_http_only_from_the_ingress_controller_and_metrics_only_from_monitoring(
    name: &str,
) {
    assert_no_findings(
        name,
        "deploy/k8s/networkpolicy.yaml",
        hardening::network_policy_findings,
    );
}

fn compose_publishes_ports_on_loopback_only(name: &str) {
    assert_no_findings(name, "docker-compose.yml", hardening::compose_findings);
}

fn every_workflow_pins_actions_by_commit_sha_and_declares_permissions(name: &str) {
    let project = &variant(name).project;
    let workflows = scan::files(&project.join(".github/workflows")).unwrap();
    assert!(!workflows.is_empty(), "no workflow");
    for workflow in workflows {
        let path = workflow.strip_prefix(project).unwrap().to_str().unwrap();
        assert_no_findings(name, path, hardening::workflow_findings);
    }
}

fn dockerignore_keeps_every_env_file_but_the_example_out(name: &str) {
    assert_no_findings(name, ".dockerignore", hardening::dockerignore_findings);
}

fn dependabot_refreshes_the_pinned_actions_and_base_images(name: &str) {
    assert_no_findings(
        name,
        ".github/dependabot.yml",
        hardening::project_dependabot_findings,
    );
}

/// The files excluded from Liquid arrive byte for byte, tags of their own included, and
/// only they are spared by the scan: a tag left anywhere else is still reported.
#[test]
fn only_the_files_excluded_from_liquid_may_hold_tags() {
    let verbatim = scan::Verbatim::of_template().unwrap();
    let full = variant("full");
    // The shared render stays untouched: a tag is planted in a copy.
    let copy = tempfile::tempdir().unwrap();
    render::copy_tree(&full.project, copy.path()).unwrap();
    let project = copy.path();
    let spared: Vec<_> = scan::files(project)
        .unwrap()
        .into_iter()
        .filter(|file| verbatim.contains(file.strip_prefix(project).unwrap()))
        .collect();
    let mut with_tags = 0;
    for file in &spared {
        let relative = file.strip_prefix(project).unwrap();
        let source = examples::repo_root().join("template").join(relative);
        let text = std::fs::read_to_string(file).unwrap();
        assert_eq!(
            text,
            std::fs::read_to_string(source).unwrap(),
            "{}",
            relative.display()
        );
        with_tags += usize::from(text.contains("{{") || text.contains("{%"));
    }
    assert!(with_tags > 0, "no verbatim file holds a tag: {spared:#?}");

    let readme = project.join("README.md");
    let text = std::fs::read_to_string(&readme).unwrap();
    std::fs::write(&readme, format!("{text}\nSee {{{{ forgotten }}}}.\n")).unwrap();
    let leftovers = scan::leftover_tags(project, &verbatim).unwrap();

    let reported: Vec<String> = leftovers.iter().map(ToString::to_string).collect();
    assert_eq!(reported.len(), 1, "{reported:#?}");
    assert!(reported[0].starts_with("README.md:"), "{reported:#?}");
}

/// Every combination of the template's bool options has exactly one example, so the
/// harness covers the full product and no variant goes untested.
#[test]
fn examples_cover_every_combination_of_options() {
    let config: toml::Table =
        std::fs::read_to_string(examples::repo_root().join("cargo-generate.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let options: Vec<String> = config["placeholders"]
        .as_table()
        .unwrap()
        .iter()
        .filter(|(_, spec)| spec.get("type").and_then(|t| t.as_str()) == Some("bool"))
        .map(|(name, _)| name.clone())
        .collect();

    let mut seen = BTreeSet::new();
    for example in examples::all().unwrap() {
        let values = example.values().unwrap();
        let combination: Vec<bool> = options
            .iter()
            .map(|option| {
                values
                    .get(option)
                    .and_then(toml::Value::as_bool)
                    .unwrap_or_else(|| panic!("{} does not set `{option}`", example.name))
            })
            .collect();
        assert!(
            seen.insert(combination.clone()),
            "{} repeats the combination {combination:?}",
            example.name
        );
    }

    assert_eq!(
        seen.len(),
        1 << options.len(),
        "options {options:?}: {seen:?}"
    );
}

/// The variants left out of the MongoDB pass (`Example::runs_on_mongodb`) must not touch
/// storage beyond what `minimal` does, which has the pass: the same storage code, and the
/// same other source files using it. A module that starts storing records fails here
/// until its variants join the pass.
#[test]
fn variants_without_a_mongodb_pass_store_nothing_minimal_does_not() {
    let minimal = variant("minimal");
    assert!(minimal.example.runs_on_mongodb().unwrap());
    let reference = storage_footprint(&minimal);

    for example in examples::all().unwrap() {
        if example.runs_on_mongodb().unwrap() {
            continue;
        }
        let footprint = storage_footprint(&variant(&example.name));
        let differing: BTreeSet<&String> = footprint
            .iter()
            .filter(|(file, text)| reference.get(*file) != Some(*text))
            .chain(
                reference
                    .iter()
                    .filter(|(file, _)| !footprint.contains_key(*file)),
            )
            .map(|(file, _)| file)
            .collect();
        assert!(
            differing.is_empty(),
            "{} touches storage beyond minimal in {differing:?}: give it the MongoDB pass",
            example.name
        );
    }
}

/// Each file of `src/storage/` whole, and of every other source file using the storage
/// module or the app's store, the lines naming storage; paths into the crate by its name
/// (`minimal::storage`) read `crate_name::`, since each variant is named after itself.
fn storage_footprint(variant: &Rendered) -> BTreeMap<String, String> {
    let project = &variant.project;
    let crate_path = format!("{}::", variant.example.name.replace('-', "_"));
    let mut footprint = BTreeMap::new();
    for file in scan::files(&project.join("src")).unwrap() {
        let name = file.strip_prefix(project).unwrap().display().to_string();
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace(&crate_path, "crate_name::");
        if name.starts_with("src/storage/") {
            footprint.insert(name, text);
        } else if text.contains("storage::") || text.contains("state.storage") {
            let lines: Vec<&str> = text.lines().filter(|l| l.contains("storage")).collect();
            footprint.insert(name, lines.join("\n"));
        }
    }
    footprint
}

/// The template's own Rust files, those without Liquid tags, are as rustfmt (edition
/// 2024) writes them, so the template reads like the code it renders. Each goes through
/// rustfmt alone, on standard input: given a path, rustfmt would follow `mod` lines into
/// files that hold tags.
#[test]
fn the_templates_rust_files_without_liquid_tags_are_rustfmt_clean() {
    let template = examples::repo_root().join("template");
    let mut checked = 0;
    let mut unformatted = Vec::new();
    for file in scan::files(&template).unwrap() {
        let text = std::fs::read_to_string(&file).unwrap();
        if file.extension().is_none_or(|ext| ext != "rs") || scan::holds_tag(&text) {
            continue;
        }
        checked += 1;
        if rustfmt(&file, &text) != text {
            unformatted.push(file.strip_prefix(&template).unwrap().display().to_string());
        }
    }

    assert!(
        checked > 0,
        "no Rust file without tags in {}",
        template.display()
    );
    assert!(
        unformatted.is_empty(),
        "not rustfmt-clean (run `rustfmt --edition 2024` on them): {unformatted:#?}"
    );
}

/// What rustfmt makes of `text`, the contents of `file`.
fn rustfmt(file: &Path, text: &str) -> String {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout"])
        .current_dir(file.parent().unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rustfmt is installed (`rustup component add rustfmt`)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "rustfmt failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
