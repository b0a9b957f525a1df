//! The checks of one variant, in the order `ci check` runs them all ([`everything`]);
//! each test tier runs its share of the same stages on the same shared render
//! ([`crate::rendered`]), one test case per variant:
//!
//! 1. [`static_checks`]: no leftover template tag, the hardening rules (`render` tier);
//! 2. the render's snapshots, file tree and dependencies (`render` tier);
//! 3. the linters on the container, CI and Kubernetes files (`assets` tier);
//! 4. [`build_and_test`]: `cargo fmt --check`, `cargo clippy --all-targets -- -D
//!    warnings`, `cargo test` on the embedded store, the printed schema and the list of
//!    tests (snapshots), the graphql-http audit of the binary ([`crate::audit`]), and
//!    for the variants that have one a second pass of the API tests on MongoDB and one
//!    on a Redis Cluster (`variants` tier).
//!
//! All variants share one `CARGO_TARGET_DIR`, so dependencies build once, and the second
//! pass reuses the test binary the first one built.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{
    audit::{self, Auditor},
    examples::{Example, repo_root},
    hardening,
    lint::Linters,
    mongodb::MongoServer,
    rendered::{self, Rendered},
    scan,
    snapshots::{self, Snapshot},
};

/// The variable that puts a rendered project's tests on MongoDB.
const TEST_MONGODB_URI: &str = "TEST_MONGODB_URI";
/// The API test binary (`tests/api/main.rs`) and the tests in it that need MongoDB.
const API_TESTS: [&str; 4] = ["test", "--test", "api", "--no-fail-fast"];
const MONGODB_ONLY: &str = "mongodb_only";

/// What happened to one variant.
#[derive(Debug)]
pub struct VariantReport {
    pub name: String,
    pub render_time: Duration,
    pub build_time: Duration,
    /// Tests passed by `cargo test` on the embedded store, and the time they took.
    pub tests_passed: usize,
    pub test_time: Duration,
    /// The second pass, for variants that run on MongoDB too.
    pub mongodb: Option<MongoPass>,
    /// The API tests again on a Redis Cluster, for variants that keep data in Redis.
    pub cluster: Option<ClusterPass>,
    /// The GraphQL schema the rendered binary printed.
    pub sdl: Option<String>,
    /// The binary's score in the GraphQL-over-HTTP audit.
    pub audit: Option<audit::Score>,
    /// Every test the variant has, one name a line, sorted.
    pub test_names: Option<String>,
    pub failure: Option<String>,
}

impl VariantReport {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            render_time: Duration::ZERO,
            build_time: Duration::ZERO,
            tests_passed: 0,
            test_time: Duration::ZERO,
            mongodb: None,
            cluster: None,
            sdl: None,
            audit: None,
            test_names: None,
            failure: None,
        }
    }

    /// The `variants` tier's snapshots: the schema (`schema@`) and the tests (`tests@`).
    pub fn snapshots(&self) -> Vec<Snapshot> {
        [("schema", &self.sdl), ("tests", &self.test_names)]
            .into_iter()
            .filter_map(|(what, contents)| {
                Some(Snapshot {
                    tier: "variants",
                    name: format!("{what}@{}", self.name),
                    contents: contents.clone()?,
                })
            })
            .collect()
    }

    fn fail(&mut self, error: &anyhow::Error) {
        let failure = self.failure.get_or_insert_with(String::new);
        if !failure.is_empty() {
            failure.push('\n');
        }
        let _ = write!(failure, "{error:#}");
    }
}

/// The API tests run again on MongoDB.
#[derive(Debug, Default)]
pub struct MongoPass {
    /// The whole API suite, every app on MongoDB.
    pub tests_passed: usize,
    /// The tests only MongoDB can run (ignored on the embedded store).
    pub mongodb_only_passed: usize,
    pub time: Duration,
}

/// The API tests run again with every app on a Redis Cluster of their own
/// (`TEST_REDIS=cluster`: the test binary starts three masters on loopback).
#[derive(Debug, Default)]
pub struct ClusterPass {
    pub tests_passed: usize,
    pub time: Duration,
}

/// Where variants build: one directory for all, inside this repository's `target/`.
pub fn shared_target_dir() -> PathBuf {
    std::env::var_os("CI_VARIANTS_TARGET_DIR").map_or_else(
        || repo_root().join("target").join("variants"),
        PathBuf::from,
    )
}

/// Every stage, in order, on the shared render of the variant `name`; a failing stage
/// does not stop the later ones, and the report holds every failure. Snapshots are
/// compared with the stored files; the MongoDB pass runs on [`MongoServer::shared`].
pub fn everything(name: &str, linters: &Linters, target_dir: &Path) -> VariantReport {
    let variant = match rendered::variant(name) {
        Ok(variant) => variant,
        Err(error) => {
            let mut report = VariantReport::new(name);
            report.fail(&error);
            return report;
        }
    };
    let project = &variant.project;
    let mut failures = Vec::new();
    failures.push(static_checks(project));
    match snapshots::of_render(name, project) {
        Ok(render_snapshots) => failures.extend(render_snapshots.iter().map(Snapshot::compare)),
        Err(error) => failures.push(Err(error)),
    }
    failures.push(linters.lint_project(project).context("linters"));
    let mongodb = match variant.example.runs_on_mongodb() {
        Ok(true) => MongoServer::shared().map(Some),
        Ok(false) => Ok(None),
        Err(error) => Err(error),
    };
    let mut report = match mongodb {
        Ok(mongodb) => build_and_test(&variant, target_dir, mongodb),
        Err(error) => {
            let mut report = VariantReport::new(name);
            report.render_time = variant.render_time;
            report.fail(&error.context("MongoDB server"));
            report
        }
    };
    failures.extend(report.snapshots().iter().map(Snapshot::compare));
    for error in failures.into_iter().filter_map(Result::err) {
        report.fail(&error);
    }
    report
}

/// Stage 1: no template tag is left in the render, and the hardening rules pass.
///
/// # Errors
/// Fails with every leftover tag and every finding.
pub fn static_checks(project: &Path) -> Result<()> {
    let leftovers = scan::leftover_tags(project, &scan::Verbatim::of_template()?)?;
    if !leftovers.is_empty() {
        let lines: Vec<String> = leftovers.iter().map(ToString::to_string).collect();
        bail!("leftover template tags:\n{}", lines.join("\n"));
    }
    hardening::check_project(project)
}

/// Stage 4 on a rendered variant: builds and tests it in `target_dir`; with a `mongodb`
/// server, a variant that has a second pass runs it there.
pub fn build_and_test(
    variant: &Rendered,
    target_dir: &Path,
    mongodb: Option<&MongoServer>,
) -> VariantReport {
    let mut report = VariantReport::new(&variant.example.name);
    report.render_time = variant.render_time;
    if let Err(error) = run_checks(
        &variant.example,
        &variant.project,
        target_dir,
        mongodb,
        &mut report,
    ) {
        report.fail(&error);
    }
    report
}

fn run_checks(
    example: &Example,
    project: &Path,
    target_dir: &Path,
    mongodb: Option<&MongoServer>,
    report: &mut VariantReport,
) -> Result<()> {
    let cargo = Cargo::new(project, target_dir);
    cargo.run(&["fmt", "--check"])?;
    let started = Instant::now();
    cargo.run(&["clippy", "--all-targets", "--", "-D", "warnings"])?;
    cargo.run(&["test", "--no-run"])?;
    report.build_time = started.elapsed();
    let listed = cargo.run(&["test", "--", "--list"])?;
    report.test_names = Some(snapshots::test_names(&String::from_utf8_lossy(
        &listed.stdout,
    )));
    let started = Instant::now();
    let tests = cargo.run(&["test"])?;
    report.test_time = started.elapsed();
    report.tests_passed = count_passed(&String::from_utf8_lossy(&tests.stdout));
    // The binary `cargo test` built: `cargo run` would build the dependencies again,
    // without the features the dev-dependencies unify into them.
    let binary = target_dir.join("debug").join(&example.name);
    let schema = Command::new(&binary)
        .arg("schema")
        .output()
        .with_context(|| format!("failed to run {}", binary.display()))?;
    if !schema.status.success() {
        bail!("schema failed:\n{}", tail(&schema.stderr));
    }
    report.sdl = Some(String::from_utf8(schema.stdout).context("schema is not UTF-8")?);
    let keeps_data_in_redis = example.runs_on_redis_cluster()?;
    let score = Auditor::ensure()?
        .audit(&binary, project, keeps_data_in_redis)
        .context("the graphql-http audit")?;
    let missed = score.failures.join("\n");
    let complete = score.complete();
    report.audit = Some(score);
    if !complete {
        bail!("the graphql-http audit missed a MUST or a SHOULD:\n{missed}");
    }

    if let Some(server) = mongodb
        && example.runs_on_mongodb()?
    {
        // Normally a no-op; a variant of the same name built into the shared target dir
        // in between (another checkout) rebuilds here, counted as build time.
        let started = Instant::now();
        cargo.run(&[&API_TESTS[..], &["--no-run"]].concat())?;
        report.build_time += started.elapsed();
        let pass = report.mongodb.insert(MongoPass::default());
        run_on_mongodb(&cargo, server, pass).context("on MongoDB")?;
    }
    if example.runs_on_redis_cluster()? {
        let started = Instant::now();
        let suite = cargo
            .run_with(&API_TESTS, &[("TEST_REDIS", "cluster")])
            .context("on a Redis Cluster")?;
        let pass = ClusterPass {
            tests_passed: count_passed(&String::from_utf8_lossy(&suite.stdout)),
            time: started.elapsed(),
        };
        if pass.tests_passed == 0 {
            bail!("the Redis Cluster run passed no test");
        }
        report.cluster = Some(pass);
    }
    Ok(())
}

/// The API test binary again with every app on `server`, then the tests only MongoDB
/// can run. Both count: a filter that matched nothing would hide those tests.
fn run_on_mongodb(cargo: &Cargo, server: &MongoServer, pass: &mut MongoPass) -> Result<()> {
    let started = Instant::now();
    let on_mongodb = [(TEST_MONGODB_URI, server.uri())];
    let suite = cargo.run_with(&API_TESTS, &on_mongodb)?;
    pass.tests_passed = count_passed(&String::from_utf8_lossy(&suite.stdout));
    let only = [&API_TESTS[..], &["--", "--ignored", MONGODB_ONLY]].concat();
    let only = cargo.run_with(&only, &on_mongodb)?;
    pass.mongodb_only_passed = count_passed(&String::from_utf8_lossy(&only.stdout));
    pass.time = started.elapsed();
    if pass.tests_passed == 0 || pass.mongodb_only_passed == 0 {
        bail!("a MongoDB run passed no test: {pass:?}");
    }
    Ok(())
}

/// Sums the `N passed` of every `test result:` line.
fn count_passed(output: &str) -> usize {
    output
        .lines()
        .filter_map(|line| line.strip_prefix("test result: "))
        .filter_map(|rest| rest.split(';').next())
        .filter_map(|ok| ok.split_whitespace().nth(1)?.parse::<usize>().ok())
        .sum()
}

struct Cargo<'a> {
    project: &'a Path,
    target_dir: &'a Path,
}

impl<'a> Cargo<'a> {
    fn new(project: &'a Path, target_dir: &'a Path) -> Self {
        Self {
            project,
            target_dir,
        }
    }

    /// Runs `cargo <args>` in the project, on the embedded store and one Redis node; on
    /// failure the error holds the output's tail.
    fn run(&self, args: &[&str]) -> Result<Output> {
        self.run_with(args, &[])
    }

    /// Like [`Cargo::run`], with the variables `env` (which put the tests on MongoDB or a
    /// Redis Cluster). The caller's own `TEST_MONGODB_URI` and `TEST_REDIS` never leak
    /// into a project.
    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Output> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args(args)
            .current_dir(self.project)
            .env("CARGO_TARGET_DIR", self.target_dir)
            // Every variant builds once: incremental caches would only fill the disk.
            .env("CARGO_INCREMENTAL", "0")
            .env_remove("RUSTFLAGS")
            .env_remove(TEST_MONGODB_URI)
            .env_remove("TEST_REDIS")
            .env_remove("TEST_REDIS_CLUSTER");
        for name in harness_crate_variables() {
            command.env_remove(name);
        }
        command.envs(env.iter().copied());
        let output = command
            .output()
            .with_context(|| format!("failed to start cargo {}", args.join(" ")))?;
        if !output.status.success() {
            bail!(
                "cargo {} failed:\n{}{}",
                args.join(" "),
                tail(&output.stdout),
                tail(&output.stderr)
            );
        }
        Ok(output)
    }
}

/// What cargo set for this crate's own build and tests (`CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_*`, …). Left in place, they leak into the variants' builds: ring's build
/// script reruns when `CARGO_MANIFEST_DIR` changes, so each checkout sharing the target
/// dir would rebuild ring and everything above it for the others.
fn harness_crate_variables() -> Vec<std::ffi::OsString> {
    const PREFIXES: [&str; 6] = [
        "CARGO_MANIFEST_",
        "CARGO_PKG_",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_BIN_EXE_",
    ];
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| {
            let name = name.to_string_lossy();
            PREFIXES.iter().any(|prefix| name.starts_with(prefix))
        })
        .collect()
}

fn tail(bytes: &[u8]) -> String {
    const LINES: usize = 80;
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LINES);
    let mut out = String::new();
    for line in &lines[start..] {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// A fixed-width table of the reports, failures listed below it. Tests passed, and the
/// time they took, on each store: `embedded` is all of `cargo test`, `mongodb` the API
/// tests run again on MongoDB, `cluster` again on a Redis Cluster (`-`: no such pass);
/// `audit` the MUST and SHOULD audits of GraphQL over HTTP passed.
pub fn table(reports: &[VariantReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>11}  result",
        "variant",
        "render",
        "build",
        "embedded",
        "time",
        "mongodb",
        "time",
        "cluster",
        "time",
        "audit"
    );
    let pass = |passed: Option<(usize, Duration)>| match passed {
        Some((passed, time)) => (passed.to_string(), format!("{:.1}s", time.as_secs_f64())),
        None => ("-".to_string(), "-".to_string()),
    };
    for report in reports {
        let (mongodb, mongodb_time) = pass(
            report
                .mongodb
                .as_ref()
                .map(|pass| (pass.tests_passed + pass.mongodb_only_passed, pass.time)),
        );
        let (cluster, cluster_time) = pass(
            report
                .cluster
                .as_ref()
                .map(|pass| (pass.tests_passed, pass.time)),
        );
        let audit = report.audit.as_ref().map_or_else(
            || "-".to_string(),
            |score| {
                format!(
                    "{}/{},{}/{}",
                    score.must.passed, score.must.total, score.should.passed, score.should.total
                )
            },
        );
        let _ = writeln!(
            out,
            "{:<14} {:>7.2}s {:>7.1}s {:>9} {:>7.1}s {:>8} {:>8} {:>8} {:>8} {:>11}  {}",
            report.name,
            report.render_time.as_secs_f64(),
            report.build_time.as_secs_f64(),
            report.tests_passed,
            report.test_time.as_secs_f64(),
            mongodb,
            mongodb_time,
            cluster,
            cluster_time,
            audit,
            if report.failure.is_some() {
                "FAIL"
            } else {
                "ok"
            }
        );
    }
    for report in reports {
        if let Some(failure) = &report.failure {
            let _ = writeln!(out, "\n--- {} ---\n{failure}", report.name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_each_stores_tests_and_a_dash_without_a_second_pass() {
        let report = |name: &str, mongodb, cluster| VariantReport {
            name: name.into(),
            render_time: Duration::from_millis(500),
            build_time: Duration::from_secs(60),
            tests_passed: 80,
            test_time: Duration::from_secs(20),
            mongodb,
            cluster,
            sdl: None,
            audit: None,
            test_names: None,
            failure: None,
        };
        let pass = MongoPass {
            tests_passed: 60,
            mongodb_only_passed: 6,
            time: Duration::from_secs(21),
        };

        let cluster = ClusterPass {
            tests_passed: 55,
            time: Duration::from_secs(30),
        };

        let mut audited = report("auth", Some(pass), Some(cluster));
        audited.audit = Some(audit::Score {
            must: audit::Tally {
                passed: 13,
                total: 13,
            },
            should: audit::Tally {
                passed: 22,
                total: 23,
            },
            ..audit::Score::default()
        });
        let table = table(&[audited, report("email", None, None)]);

        let rows: Vec<Vec<&str>> = table
            .lines()
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[0],
            [
                "variant", "render", "build", "embedded", "time", "mongodb", "time", "cluster",
                "time", "audit", "result"
            ]
        );
        assert_eq!(
            rows[1],
            [
                "auth",
                "0.50s",
                "60.0s",
                "80",
                "20.0s",
                "66",
                "21.0s",
                "55",
                "30.0s",
                "13/13,22/23",
                "ok"
            ]
        );
        assert_eq!(
            rows[2],
            [
                "email", "0.50s", "60.0s", "80", "20.0s", "-", "-", "-", "-", "-", "ok"
            ]
        );
    }

    #[test]
    fn the_variables_cargo_set_for_the_harness_are_kept_from_the_variants() {
        // `cargo test` sets these for this very test process.
        let removed = harness_crate_variables();

        assert!(
            removed.iter().any(|name| name == "CARGO_MANIFEST_DIR"),
            "{removed:?}"
        );
        assert!(
            removed.iter().any(|name| name == "CARGO_PKG_NAME"),
            "{removed:?}"
        );
        assert!(!removed.iter().any(|name| name == "CARGO"), "{removed:?}");
    }

    #[test]
    fn passed_tests_are_summed_over_every_test_binary() {
        let output = "test result: ok. 3 passed; 0 failed; 0 ignored\n\
                      running 0 tests\n\
                      test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured\n";
        assert_eq!(count_passed(output), 15);
    }
}
