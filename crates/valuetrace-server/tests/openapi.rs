//! `docs/openapi.json` stays in sync with the router: it is an OpenAPI 3.1 document, it describes
//! exactly the routes (path and method) that the server's sources register with `.route(..)`, and
//! every route it describes answers through the router (no stale paths); every `$ref` resolves;
//! and `GET /api/v1/openapi.json` serves the same document.
//!
//! The routes are read from the sources at test time by a small Rust tokenizer: every
//! `.route("<path>", get(..).post(..))` in `src/`; a registration it cannot read (a path that is
//! not a string literal, `any(..)`, `.nest(..)`, `.merge(..)`, ...) fails the test with a message
//! instead of being skipped, so a new route cannot go undocumented unnoticed. The one merge it
//! accepts is the dashboard's (`.merge(valuetrace_dashboard::router(..))`): HTML pages, not API.

mod common;

use axum::http::{Request, StatusCode};
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const NOW: i64 = 1_795_256_130_123;

/// The `axum::routing` functions that add one HTTP method to a route.
const METHODS: &[&str] = &[
    "get", "post", "put", "delete", "patch", "head", "options", "trace", "connect",
];

/// Router calls this test cannot read; registering routes through them needs a parser update.
const UNSUPPORTED: &[&str] = &[
    "nest",
    "nest_service",
    "merge",
    "route_service",
    "fallback_service",
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn document_path() -> PathBuf {
    crate_dir().join("../../docs/openapi.json")
}

fn document_text() -> String {
    let path = document_path();
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn document() -> Value {
    serde_json::from_str(&document_text()).expect("docs/openapi.json is JSON")
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Punct(char),
    /// Numbers, char literals and lifetimes: never part of a route registration.
    Other,
}

/// Rust source as tokens with their line numbers; comments are dropped.
fn tokenize(source: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = source.chars().collect();
    let ident_char = |c: char| c.is_alphanumeric() || c == '_';
    let mut tokens = Vec::new();
    let (mut i, mut line) = (0, 1);
    let advance = |i: &mut usize, line: &mut usize| {
        if chars[*i] == '\n' {
            *line += 1;
        }
        *i += 1;
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let start_line = line;
        if c.is_whitespace() {
            advance(&mut i, &mut line);
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    advance(&mut i, &mut line);
                }
            }
        } else if c == '"' {
            advance(&mut i, &mut line);
            let mut text = String::new();
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    advance(&mut i, &mut line);
                    match chars.get(i) {
                        Some('n') => text.push('\n'),
                        Some('t') => text.push('\t'),
                        Some(&other) => text.push(other),
                        None => {}
                    }
                } else {
                    text.push(chars[i]);
                }
                if i < chars.len() {
                    advance(&mut i, &mut line);
                }
            }
            i += 1;
            tokens.push((Token::Str(text), start_line));
        } else if (c == 'r' || c == 'b')
            && (i == 0 || !ident_char(chars[i - 1]))
            && is_raw_string(&chars[i..])
        {
            // r"..", r#".."#, br"..": the text up to the quote and as many hashes.
            while chars[i] != '"' && chars[i] != '#' {
                i += 1;
            }
            let mut hashes = 0;
            while chars[i] == '#' {
                hashes += 1;
                i += 1;
            }
            i += 1;
            let mut text = String::new();
            loop {
                if i >= chars.len() {
                    break;
                }
                if chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|&h| h == '#') {
                    i += 1 + hashes;
                    break;
                }
                text.push(chars[i]);
                advance(&mut i, &mut line);
            }
            tokens.push((Token::Str(text), start_line));
        } else if c == '\'' {
            // A char literal ('a', '\n', '"') or a lifetime ('static).
            if next == Some('\\') {
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
            }
            tokens.push((Token::Other, start_line));
        } else if c.is_ascii_digit() {
            while i < chars.len() && (ident_char(chars[i]) || chars[i] == '.') {
                i += 1;
            }
            tokens.push((Token::Other, start_line));
        } else if ident_char(c) {
            let begin = i;
            while i < chars.len() && ident_char(chars[i]) {
                i += 1;
            }
            let ident: String = chars[begin..i].iter().collect();
            tokens.push((Token::Ident(ident), start_line));
        } else {
            tokens.push((Token::Punct(c), start_line));
            i += 1;
        }
    }
    tokens
}

/// Whether `chars` starts a raw (byte) string literal: `r"`, `r#"`, `br"`, `br#"`.
fn is_raw_string(chars: &[char]) -> bool {
    let rest = match chars {
        ['b', 'r', rest @ ..] | ['r', rest @ ..] => rest,
        _ => return false,
    };
    let hashes = rest.iter().take_while(|&&c| c == '#').count();
    rest.get(hashes) == Some(&'"')
}

/// One `.route(..)` registration: method (lower case), axum path, and where it is.
#[derive(Debug, Clone)]
struct Registered {
    method: String,
    path: String,
    at: String,
}

/// Every route registered in the server's sources (`src/**/*.rs`).
fn registered_routes() -> Vec<Registered> {
    let mut files = Vec::new();
    collect_rust_files(&crate_dir().join("src"), &mut files);
    files.sort();
    assert!(!files.is_empty(), "no sources found under src/");
    let mut routes = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).expect("read source");
        let name = file
            .strip_prefix(crate_dir())
            .unwrap_or(&file)
            .display()
            .to_string();
        routes.extend(routes_in(&name, &tokenize(&source)));
    }
    routes
}

fn collect_rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect_rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The routes of one file's tokens. Panics on a registration it cannot read.
fn routes_in(file: &str, tokens: &[(Token, usize)]) -> Vec<Registered> {
    let mut routes = Vec::new();
    let punct = |i: usize, c: char| matches!(tokens.get(i), Some((Token::Punct(p), _)) if *p == c);
    for (i, (token, line)) in tokens.iter().enumerate() {
        let Token::Ident(name) = token else {
            continue;
        };
        let at = format!("{file}:{line}");
        if !(i > 0 && punct(i - 1, '.') && punct(i + 1, '(')) {
            continue;
        }
        // The dashboard's HTML pages (crates/valuetrace-dashboard) are not part of the JSON API.
        let dashboard = matches!(tokens.get(i + 2), Some((Token::Ident(crate_name), _)) if crate_name == "valuetrace_dashboard");
        if name == "merge" && dashboard {
            continue;
        }
        if UNSUPPORTED.contains(&name.as_str()) {
            panic!(
                "{at}: `.{name}(..)` registers routes this test cannot read; extend tests/openapi.rs"
            );
        }
        if name != "route" {
            continue;
        }
        let Some((Token::Str(path), _)) = tokens.get(i + 2) else {
            panic!(
                "{at}: the path of `.route(..)` is not a string literal; tests/openapi.rs reads only literals"
            );
        };
        assert!(punct(i + 3, ','), "{at}: expected `,` after the route path");
        // The method router: everything up to the `)` closing `.route(`.
        let mut depth = 0;
        let mut methods = Vec::new();
        let mut j = i + 4;
        loop {
            let Some((token, _)) = tokens.get(j) else {
                panic!("{at}: unterminated `.route(`");
            };
            match token {
                Token::Punct('(' | '[' | '{') => depth += 1,
                Token::Punct(')' | ']' | '}') if depth == 0 => break,
                Token::Punct(')' | ']' | '}') => depth -= 1,
                Token::Ident(call) if depth == 0 && punct(j + 1, '(') => {
                    if METHODS.contains(&call.as_str()) {
                        methods.push(call.clone());
                    } else if call == "any" || call == "on" || call.ends_with("_service") {
                        panic!(
                            "{at}: `{call}(..)` in the route of `{path}` is not one method; \
                             extend tests/openapi.rs"
                        );
                    }
                }
                _ => {}
            }
            j += 1;
        }
        assert!(
            !methods.is_empty(),
            "{at}: no method (get, post, ...) found for the route `{path}`"
        );
        for method in methods {
            routes.push(Registered {
                method,
                path: path.clone(),
                at: at.clone(),
            });
        }
    }
    routes
}

/// axum's `{param}` / `{*rest}` as OpenAPI's `{param}` / `{rest}`.
fn openapi_path(axum_path: &str) -> String {
    axum_path.replace("{*", "{")
}

/// The path parameters `{name}` of a templated path.
fn template_params(path: &str) -> BTreeSet<String> {
    path.split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

const OPERATION_KEYS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every `(method, path)` operation of the document.
fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("`paths` is an object");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("path item is an object");
            item.keys()
                .filter(|key| OPERATION_KEYS.contains(&key.as_str()))
                .map(|method| (method.clone(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Follows a local `$ref` (`#/components/...`) to its target.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("`{reference}` is not a local reference"));
            doc.pointer(pointer)
                .unwrap_or_else(|| panic!("`{reference}` does not resolve"))
        }
        None => value,
    }
}

/// Every `$ref` and discriminator mapping target in `value`, with its JSON path.
fn references(value: &Value, at: &str, into: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let here = format!("{at}/{key}");
                if key == "$ref"
                    && let Some(target) = child.as_str()
                {
                    into.push((here.clone(), target.to_owned()));
                }
                if key == "mapping"
                    && at.ends_with("/discriminator")
                    && let Some(mapping) = child.as_object()
                {
                    for (tag, target) in mapping {
                        let target = target.as_str().expect("mapping targets are strings");
                        into.push((format!("{here}/{tag}"), target.to_owned()));
                    }
                }
                references(child, &here, into);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                references(child, &format!("{at}/{index}"), into);
            }
        }
        _ => {}
    }
}

#[test]
fn document_is_openapi_3_1() {
    let doc = document();
    let version = doc["openapi"].as_str().expect("`openapi` is a string");
    assert!(version.starts_with("3.1"), "openapi = {version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("components.securitySchemes");
    let mut operation_ids = BTreeSet::new();
    for (method, path) in documented_operations(&doc) {
        let operation = &doc["paths"][&path][&method];
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        assert!(
            operation_ids.insert(id.to_owned()),
            "duplicate operationId {id}"
        );
        let responses = operation["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path}: no responses"));
        assert!(responses.contains_key("200"), "{method} {path}: no 200");
        let security = operation["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path}: say `security` (`[]` for no key)"));
        for requirement in security {
            for scheme in requirement.as_object().expect("requirement").keys() {
                assert!(
                    schemes.contains_key(scheme),
                    "{method} {path}: unknown scheme {scheme}"
                );
            }
        }
        // Path parameters: exactly the template's, each required.
        let mut declared = BTreeSet::new();
        let item_params = doc["paths"][&path]["parameters"].as_array();
        let op_params = operation["parameters"].as_array();
        for parameter in item_params.into_iter().chain(op_params).flatten() {
            let parameter = resolve(&doc, parameter);
            if parameter["in"] == "path" {
                let name = parameter["name"].as_str().expect("parameter name");
                assert_eq!(
                    parameter["required"], true,
                    "{method} {path}: path parameter {name} must be required"
                );
                declared.insert(name.to_owned());
            }
        }
        assert_eq!(
            declared,
            template_params(&path),
            "{method} {path}: path parameters"
        );
    }
}

#[test]
fn every_registered_route_is_documented_and_nothing_else() {
    let registered = registered_routes();
    // A sanity floor: the parser found the router (ingest, queries, answers, health).
    assert!(
        registered.len() >= 10,
        "only {} routes found: {registered:?}",
        registered.len()
    );
    let doc = document();
    let documented = documented_operations(&doc);
    let mut missing = Vec::new();
    let mut seen = BTreeMap::new();
    for route in &registered {
        let key = (route.method.clone(), openapi_path(&route.path));
        if let Some(first) = seen.insert(key.clone(), route.at.clone()) {
            panic!(
                "{} {} registered twice: {first} and {}",
                route.method, route.path, route.at
            );
        }
        if !documented.contains(&key) {
            missing.push(format!(
                "{} {} ({})",
                route.method.to_uppercase(),
                key.1,
                route.at
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from docs/openapi.json:\n  {}",
        missing.join("\n  ")
    );
    let stale: Vec<_> = documented
        .iter()
        .filter(|key| !seen.contains_key(*key))
        .map(|(method, path)| format!("{} {path}", method.to_uppercase()))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/openapi.json describes routes the router does not register:\n  {}",
        stale.join("\n  ")
    );
}

/// The parser is checked against the real router: every documented operation (now equal to the
/// parsed routes) reaches a handler, neither the 404 fallback nor a 405.
#[tokio::test]
async fn every_documented_operation_reaches_a_handler() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = open_shop(dir.path(), NOW, SHOP_INGEST, SHOP_READ);
    for (method, path) in documented_operations(&document()) {
        let uri: String = template_params(&path)
            .iter()
            .fold(path.clone(), |uri, name| {
                uri.replace(&format!("{{{name}}}"), "shop")
            });
        let request = Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(&uri)
            .body(axum::body::Body::empty())
            .expect("request");
        let (status, _, body) = call_full(&server, request).await;
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri} did not reach a handler: {status} {body}"
        );
    }
    // And the probe can tell: an unknown path is the fallback's 404.
    let (status, _, _) = call_full(&server, get_request(None, "/api/v1/nothing")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn every_reference_resolves_to_a_component() {
    let doc = document();
    let mut found = Vec::new();
    references(&doc, "#", &mut found);
    assert!(!found.is_empty(), "no $ref at all");
    let mut used = BTreeSet::new();
    for (at, target) in &found {
        let pointer = target
            .strip_prefix("#/components/")
            .unwrap_or_else(|| panic!("{at}: `{target}` is not a `#/components/...` reference"));
        assert!(
            doc.pointer(&format!("/components/{pointer}")).is_some(),
            "{at}: `{target}` does not resolve"
        );
        used.insert(target.clone());
    }
    // Every component is used somewhere: an orphan is usually a renamed or forgotten schema.
    for section in ["schemas", "parameters", "responses", "headers"] {
        for name in doc["components"][section]
            .as_object()
            .into_iter()
            .flat_map(|map| map.keys())
        {
            let target = format!("#/components/{section}/{name}");
            assert!(used.contains(&target), "{target} is never referenced");
        }
    }
}

#[tokio::test]
async fn the_server_serves_the_document_without_a_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = open_shop(dir.path(), NOW, SHOP_INGEST, SHOP_READ);
    let (status, headers, text) =
        call_full(&server, get_request(None, "/api/v1/openapi.json")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        header(&headers, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        text,
        document_text(),
        "served document differs from docs/openapi.json"
    );
    let served: Value = serde_json::from_str(&text).expect("served document is JSON");
    assert_eq!(served, document());
}

#[test]
fn the_route_parser_reads_what_rustfmt_writes() {
    let source = r#"
        // .route("/commented", get(x))
        /* .route("/block", post(x)) */
        fn router() -> Router {
            Router::new()
                .route("/v1/batch", post(ingest::batch))
                .route(
                    "/api/v1/projects/{project}/items/{*rest}",
                    get(query::items).delete(query::remove),
                )
                .route("/healthz", get(|| async { "ok (\n" }))
                .route("/x", get(|s: &str| async move { s.get(1..).map(|c| c == '"') }))
                .route_layer(layer)
        }
    "#;
    let found: Vec<_> = routes_in("test.rs", &tokenize(source))
        .into_iter()
        .map(|r| format!("{} {}", r.method, openapi_path(&r.path)))
        .collect();
    assert_eq!(
        found,
        [
            "post /v1/batch",
            "get /api/v1/projects/{project}/items/{rest}",
            "delete /api/v1/projects/{project}/items/{rest}",
            "get /healthz",
            "get /x",
        ]
    );
    for unreadable in [
        r#"Router::new().route(PATH, get(x))"#,
        r#"Router::new().route("/a", any(x))"#,
        r#"Router::new().nest("/a", other)"#,
        r#"Router::new().merge(other)"#,
    ] {
        let result = std::panic::catch_unwind(|| routes_in("test.rs", &tokenize(unreadable)));
        assert!(result.is_err(), "accepted: {unreadable}");
    }
}
