//! Fast tier: every example renders cleanly; snapshots show what each variant contains.

use std::collections::BTreeSet;

use ci::{
    examples,
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
    for example in examples::all().unwrap() {
        let (_dir, project) = render_example(&example);

        let leftovers = scan::leftover_tags(&project).unwrap();

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
