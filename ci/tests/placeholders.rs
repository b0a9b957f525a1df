//! The pre hook and placeholder rules refuse bad input and derive defaults.

use ci::{
    examples,
    render::{self, Request},
};

fn minimal() -> examples::Example {
    examples::select(&["minimal".to_string()])
        .unwrap()
        .remove(0)
}

fn try_render(
    project_name: &str,
    defines: &[&str],
) -> anyhow::Result<(tempfile::TempDir, std::path::PathBuf)> {
    let dir = tempfile::tempdir().unwrap();
    let mut request = Request::example(&minimal(), project_name);
    request.defines = defines.iter().map(ToString::to_string).collect();
    let project = render::render(&request, dir.path())?;
    Ok((dir, project))
}

fn base_config(project: &std::path::Path) -> toml::Table {
    std::fs::read_to_string(project.join("config/base.toml"))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn names_that_cannot_be_crate_names_are_refused() {
    for (name, reason) in [
        ("1password", "must start with a lowercase letter"),
        ("config", "clashes with a Rust or dependency name"),
        ("std", "clashes with a Rust or dependency name"),
    ] {
        let error = try_render(name, &[]).expect_err(name);

        assert!(format!("{error:#}").contains(reason), "{name}: {error:#}");
    }
}

#[test]
fn ports_outside_the_tcp_range_are_refused() {
    for port in ["65536", "99999"] {
        let error = try_render("shop", &[&format!("http_port={port}")]).expect_err(port);

        assert!(
            format!("{error:#}").contains("between 1 and 65535"),
            "{port}: {error:#}"
        );
    }
}

#[test]
fn zero_and_ports_with_a_leading_zero_are_refused() {
    // `port = 08080` would make config/base.toml invalid TOML.
    for port in ["0", "08080", "00"] {
        let error = try_render("shop", &[&format!("http_port={port}")]).expect_err(port);

        assert!(
            format!("{error:#}").contains("http_port"),
            "{port}: {error:#}"
        );
    }
}

#[test]
fn values_failing_a_placeholder_pattern_are_refused() {
    for define in ["http_port=80a", "mongodb_database=bad/name"] {
        assert!(
            try_render("shop", &[define]).is_err(),
            "{define} was accepted"
        );
    }
}

#[test]
fn project_names_clashing_with_a_dependency_are_refused() {
    let full = examples::select(&["full".to_string()]).unwrap().remove(0);
    let dir = tempfile::tempdir().unwrap();
    let project = render::render(&Request::example(&full, "shop"), dir.path()).unwrap();
    let manifest: toml::Table = std::fs::read_to_string(project.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let dependencies = ["dependencies", "dev-dependencies"]
        .iter()
        .filter_map(|table| manifest[*table].as_table())
        .flat_map(|table| table.keys().cloned());

    for dependency in dependencies {
        let error = try_render(&dependency, &[]).expect_err(&dependency);

        assert!(
            format!("{error:#}").contains("clashes with a Rust or dependency name"),
            "{dependency}: {error:#}"
        );
    }
}

#[test]
fn odd_project_names_become_valid_crate_names() {
    let (_dir, project) = try_render("My Shop_API", &[]).unwrap();

    let manifest: toml::Table = std::fs::read_to_string(project.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let main = std::fs::read_to_string(project.join("src/main.rs")).unwrap();

    assert_eq!(manifest["package"]["name"].as_str(), Some("my-shop-api"));
    assert!(main.contains("my_shop_api::cli::run()"), "{main}");
}

#[test]
fn mongodb_database_defaults_to_the_crate_name() {
    let (_dir, derived) = try_render("order-service", &[]).unwrap();
    let (_dir2, explicit) = try_render("order-service", &["mongodb_database=orders"]).unwrap();

    assert_eq!(
        base_config(&derived)["database"]["mongodb_database"].as_str(),
        Some("order_service")
    );
    assert_eq!(
        base_config(&explicit)["database"]["mongodb_database"].as_str(),
        Some("orders")
    );
}

#[test]
fn the_chosen_port_reaches_the_configuration() {
    let (_dir, project) = try_render("shop", &["http_port=9090"]).unwrap();

    assert_eq!(
        base_config(&project)["http"]["port"].as_integer(),
        Some(9090)
    );
}
