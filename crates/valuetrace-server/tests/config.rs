//! The documented example configuration loads and validates, and mistakes are reported.

use valuetrace_server::config::Config;

fn example_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/valuetrace.example.toml")
}

#[test]
fn example_config_loads_and_matches_the_defaults() {
    let config = Config::from_file(&example_path()).expect("example parses");
    config.validate().expect("example is valid");
    let defaults = Config::default();
    assert_eq!(config.listen, defaults.listen);
    assert_eq!(config.limits, defaults.limits);
    assert_eq!(config.storage, defaults.storage);
    assert_eq!(config.http, defaults.http);
    assert_eq!(config.projects[0].secret_version, 1);
    assert_eq!(config.projects.len(), 1);
    assert_eq!(config.projects[0].id, "shop");
}

#[test]
fn unknown_fields_and_bad_values_are_reported() {
    let error = toml::from_str::<Config>("listn = \"127.0.0.1:1\"").expect_err("typo refused");
    assert!(error.to_string().contains("listn"), "{error}");
    let mut config = Config::default();
    config.storage.dedup_window = "2h".into();
    config.storage.persist_interval = "soon".into();
    config
        .projects
        .push(valuetrace_server::config::ProjectConfig::new(
            "Bad Id",
            vec!["md5:abc".into()],
            vec![],
        ));
    let problems = config.validate().expect_err("invalid");
    assert!(
        problems.contains("storage.dedup_window: must be at least 24h"),
        "{problems}"
    );
    assert!(
        problems.contains("storage.persist_interval: `soon` is not a duration"),
        "{problems}"
    );
    assert!(problems.contains("projects[0].id: `Bad Id`"), "{problems}");
    assert!(problems.contains("key hash `md5:abc`"), "{problems}");
}
