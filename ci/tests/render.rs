//! Fast tier: every example renders cleanly; snapshots show what each variant contains.

use std::collections::{BTreeMap, BTreeSet};

use ci::{
    examples, hardening,
    render::{self, Request},
    scan,
};

fn render_example(example: &examples::Example) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let project = render::render(&Request::example(example, &example.name), dir.path())
        .unwrap_or_else(|e| panic!("{} failed to render: {e:#}", example.name));
    (dir, project)
}

#[test]
fn every_example_renders_without_leftover_tags() {
    let verbatim = scan::Verbatim::of_template().unwrap();
    for example in examples::all().unwrap() {
        let (_dir, project) = render_example(&example);

        let leftovers = scan::leftover_tags(&project, &verbatim).unwrap();

        assert!(
            leftovers.is_empty(),
            "{}: {}",
            example.name,
            leftovers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// The files excluded from Liquid arrive byte for byte, tags of their own included, and
/// only they are spared by the scan: a tag left anywhere else is still reported.
#[test]
fn only_the_files_excluded_from_liquid_may_hold_tags() {
    let verbatim = scan::Verbatim::of_template().unwrap();
    let full = examples::select(&["full".to_string()]).unwrap().remove(0);
    let (_dir, project) = render_example(&full);
    let spared: Vec<_> = scan::files(&project)
        .unwrap()
        .into_iter()
        .filter(|file| verbatim.contains(file.strip_prefix(&project).unwrap()))
        .collect();
    let mut with_tags = 0;
    for file in &spared {
        let relative = file.strip_prefix(&project).unwrap();
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
    let leftovers = scan::leftover_tags(&project, &verbatim).unwrap();

    let reported: Vec<String> = leftovers.iter().map(ToString::to_string).collect();
    assert_eq!(reported.len(), 1, "{reported:#?}");
    assert!(reported[0].starts_with("README.md:"), "{reported:#?}");
}

#[test]
fn rendered_file_tree_per_variant() {
    for example in examples::all().unwrap() {
        let (_dir, project) = render_example(&example);

        let tree: Vec<String> = scan::files(&project)
            .unwrap()
            .iter()
            .map(|file| file.strip_prefix(&project).unwrap().display().to_string())
            .collect();

        insta::assert_snapshot!(format!("tree@{}", example.name), tree.join("\n"));
    }
}

#[test]
fn rendered_dependencies_per_variant() {
    for example in examples::all().unwrap() {
        let (_dir, project) = render_example(&example);
        let manifest: toml::Table = std::fs::read_to_string(project.join("Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();

        let dependencies = toml::to_string_pretty(&manifest["dependencies"]).unwrap();

        insta::assert_snapshot!(format!("dependencies@{}", example.name), dependencies);
    }
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
    let minimal = examples::select(&["minimal".to_string()])
        .unwrap()
        .remove(0);
    assert!(minimal.runs_on_mongodb().unwrap());
    let reference = storage_footprint(&minimal);

    for example in examples::all().unwrap() {
        if example.runs_on_mongodb().unwrap() {
            continue;
        }
        let footprint = storage_footprint(&example);
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

/// Rendered under one project name: each file of `src/storage/` whole, and of every other
/// source file using the storage module or the app's store, the lines naming storage.
fn storage_footprint(example: &examples::Example) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let project = render::render(&Request::example(example, "footprint"), dir.path()).unwrap();
    let mut footprint = BTreeMap::new();
    for file in scan::files(&project.join("src")).unwrap() {
        let name = file.strip_prefix(&project).unwrap().display().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        if name.starts_with("src/storage/") {
            footprint.insert(name, text);
        } else if text.contains("storage::") || text.contains("state.storage") {
            let lines: Vec<&str> = text.lines().filter(|l| l.contains("storage")).collect();
            footprint.insert(name, lines.join("\n"));
        }
    }
    footprint
}

/// Every variant's findings under `rule`, which reads the file at `path` in the project.
fn findings_in_every_variant(
    path: &str,
    rule: fn(&str) -> anyhow::Result<Vec<String>>,
) -> Vec<String> {
    let mut findings = Vec::new();
    for example in examples::all().unwrap() {
        let (_dir, project) = render_example(&example);
        let text = std::fs::read_to_string(project.join(path)).unwrap();
        for finding in rule(&text).unwrap() {
            findings.push(format!("{} {path}: {finding}", example.name));
        }
    }
    findings
}

#[test]
fn the_network_policy_admits_http_only_from_the_ingress_controller_and_metrics_only_from_monitoring()
 {
    let findings = findings_in_every_variant(
        "deploy/k8s/networkpolicy.yaml",
        hardening::network_policy_findings,
    );

    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn compose_publishes_ports_on_loopback_only() {
    let findings = findings_in_every_variant("docker-compose.yml", hardening::compose_findings);

    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn every_workflow_pins_actions_by_commit_sha_and_declares_permissions() {
    let findings =
        findings_in_every_variant(".github/workflows/ci.yml", hardening::workflow_findings);

    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn dockerignore_keeps_every_env_file_but_the_example_out() {
    let findings = findings_in_every_variant(".dockerignore", hardening::dockerignore_findings);

    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn dependabot_refreshes_the_pinned_actions_and_base_images() {
    let findings = findings_in_every_variant(".github/dependabot.yml", |text| {
        hardening::dependabot_findings(text, &["github-actions", "docker"])
    });

    assert!(findings.is_empty(), "{findings:#?}");
}
