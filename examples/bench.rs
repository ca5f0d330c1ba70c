//! The benchmark workloads of shared/WORKLOADS.md, eager and traced, with their exact
//! data generator and checksums.
//!
//! `cargo run --release --example bench` prints a table with traced/eager ratios;
//! `-- --json` prints one JSON object per line; `-- --only W3,W5` filters;
//! `-- --device cuda` (or `cuda:N`) runs every workload on tensors on that GPU (timings
//! wait for the GPU after each call; on a machine without one it says so and exits 2).
//! W6 is traced through AutoGraph: a plain Rust `while` on a tensor condition becomes
//! one `while` node.

#[path = "../benches/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tensorjit::prelude::*;

/// W6 as a user writes it: AutoGraph turns the `while` into one `while` node.
#[tf_function]
fn w6_while(x: &Tensor) -> Tensor {
    let mut x = x.clone();
    while x.sum_all().lt(1000.0) {
        x = &x * 1.5 + 1.0;
    }
    x
}

struct Row {
    workload: &'static str,
    mode: &'static str,
    stats: Option<Stats>,
    trace_ms: Option<f64>,
    extra: BTreeMap<&'static str, String>,
}

#[derive(Clone, Copy)]
struct Stats {
    median_us: f64,
    p10_us: f64,
    p90_us: f64,
    /// On a GPU: the per-call time of back-to-back calls with one synchronise per round
    /// (launches overlap the device's work, as in a training loop), median of rounds.
    pipelined_us: Option<f64>,
}

/// The device the workloads run on (`--device`; set once in `main`).
static DEVICE: OnceLock<Device> = OnceLock::new();

fn device() -> Device {
    DEVICE.get().copied().unwrap_or_default()
}

/// `t` on the benchmark's device.
fn put(t: Tensor) -> Tensor {
    t.to(device()).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `f` and waits until the device finished what it queued.
fn call_synced(f: &mut impl FnMut()) {
    f();
    tensorjit::device::synchronize(device()).unwrap_or_else(|e| panic!("{e}"));
}

/// Warm-up, then times single calls until both `min_calls` and `min_time` are reached.
fn time(mut f: impl FnMut(), min_calls: usize, min_time: Duration) -> Stats {
    for _ in 0..3 {
        call_synced(&mut f);
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < min_calls || start.elapsed() < min_time {
        let t = Instant::now();
        call_synced(&mut f);
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    let q = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    let pipelined_us = (device() != Device::Cpu).then(|| pipelined(&mut f));
    Stats { median_us: q(0.5), p10_us: q(0.1), p90_us: q(0.9), pipelined_us }
}

/// Rounds of 32 calls with one device synchronise at the end of each; the median
/// round's time per call (at least 10 rounds and 0.3 s).
fn pipelined(f: &mut impl FnMut()) -> f64 {
    let mut rounds = Vec::new();
    let start = Instant::now();
    while rounds.len() < 10 || start.elapsed() < Duration::from_millis(300) {
        let t = Instant::now();
        for _ in 0..31 {
            f();
        }
        call_synced(f);
        rounds.push(t.elapsed().as_secs_f64() * 1e6 / 32.0);
    }
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

fn small(f: impl FnMut()) -> Stats {
    time(f, 200, Duration::from_secs(1))
}

fn large(f: impl FnMut()) -> Stats {
    time(f, 20, Duration::from_millis(1500))
}

/// Keeps a result (or a buffer written in place) observable so the work is not elided.
fn sink<T>(t: T) {
    std::hint::black_box(t);
}

fn first_call_ms<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed().as_secs_f64() * 1e3)
}

fn row(
    workload: &'static str,
    mode: &'static str,
    stats: Stats,
    trace_ms: Option<f64>,
    extra: &[(&'static str, String)],
) -> Row {
    let mut extra: BTreeMap<&'static str, String> = extra.iter().cloned().collect();
    if let Some(p) = stats.pipelined_us {
        extra.insert("pipelined_us", format!("{p:.3}"));
    }
    Row { workload, mode, stats: Some(stats), trace_ms, extra }
}

/// The CPU threads, or on a GPU its name (as an `extra` field).
fn threads() -> (&'static str, String) {
    match device() {
        Device::Cpu => ("threads", rayon::current_num_threads().to_string()),
        d => ("device", format!("\"{d}\"")),
    }
}

fn scalar(t: &Tensor) -> f64 {
    t.to(Device::Cpu).and_then(|t| t.to_scalar::<f32>()).map(f64::from).unwrap_or(f64::NAN)
}

fn run(only: &dyn Fn(&str) -> bool, rows: &mut Vec<Row>) {
    if only("W0_init") {
        let f = function("w0", |(x,): (Tensor,)| &x + 1.0);
        let (_, ms) = first_call_ms(|| {
            f.call((Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3]).unwrap_or_else(|e| panic!("{e}")),))
        });
        rows.push(Row {
            workload: "W0_init",
            mode: "traced",
            stats: None,
            trace_ms: Some(ms),
            extra: [threads()].into(),
        });
    }
    if only("W1_dispatch") {
        let x = put(common::uniform(1, &[4], -2.0, 2.0));
        let sum = common::checksum(&common::dispatch(&x));
        let ck = ("checksum", format!("{sum:.7}"));
        rows.push(row("W1_dispatch", "eager", small(|| sink(common::dispatch(&x))), None, &[ck.clone(), threads()]));
        let f = function("w1", |(x,): (Tensor,)| common::dispatch(&x));
        let (_, ms) = first_call_ms(|| f.call((x.clone(),)));
        rows.push(row("W1_dispatch", "traced", small(|| sink(f.call((x.clone(),)))), Some(ms), &[ck, threads()]));
    }
    for (id, n) in [("W2_small_chain", 64usize), ("W3_large_elementwise", 4_000_000)] {
        if !only(id) {
            continue;
        }
        let (x, y) = (put(common::uniform(2, &[n], -2.0, 2.0)), put(common::uniform(3, &[n], -2.0, 2.0)));
        let ck = ("checksum", format!("{:.7}", common::checksum(&common::chain(&x, &y))));
        let timer = |f: &mut dyn FnMut()| if n > 1000 { large(f) } else { small(f) };
        let gbps = |s: Stats| ("gbps", format!("{:.2}", 12.0 * n as f64 / (s.median_us * 1e3)));
        let gbps_pipelined =
            |s: Stats| s.pipelined_us.map(|p| ("gbps_pipelined", format!("{:.2}", 12.0 * n as f64 / (p * 1e3))));
        let e = timer(&mut || sink(common::chain(&x, &y)));
        let mut extra = vec![ck.clone(), threads()];
        if n > 1000 {
            extra.push(gbps(e));
            extra.extend(gbps_pipelined(e));
        }
        rows.push(row(id, "eager", e, None, &extra));
        let f = function(id, |(x, y): (Tensor, Tensor)| common::chain(&x, &y));
        let (_, ms) = first_call_ms(|| f.call((x.clone(), y.clone())));
        let t = timer(&mut || sink(f.call((x.clone(), y.clone()))));
        let mut extra = vec![ck, threads()];
        if n > 1000 {
            extra.push(gbps(t));
            extra.extend(gbps_pipelined(t));
        }
        rows.push(row(id, "traced", t, Some(ms), &extra));
    }
    let params: Vec<Tensor> = common::mlp_params().into_iter().map(put).collect();
    let host_x = common::uniform(21, &[128, 784], 0.0, 1.0);
    let xall = put(host_x.clone());
    if only("W4_mlp_forward") {
        let fwd = |x: &Tensor, p: &[Tensor]| common::mlp_logits(x, p).softmax(-1);
        let ck = ("checksum", format!("{:.4}", common::checksum(&fwd(&xall, &params))));
        rows.push(row("W4_mlp_forward", "eager", large(|| sink(fwd(&xall, &params))), None, &[ck.clone(), threads()]));
        let f = function("w4", move |(x, p): (Tensor, Vec<Tensor>)| fwd(&x, &p));
        let (_, ms) = first_call_ms(|| f.call((xall.clone(), params.clone())));
        let t = large(|| sink(f.call((xall.clone(), params.clone()))));
        rows.push(row("W4_mlp_forward", "traced", t, Some(ms), &[ck, threads()]));
    }
    if only("W5_mlp_train_step") {
        let y = put(common::labels());
        for mode in ["eager", "traced"] {
            let vars = common::mlp_variables(&params);
            let v2 = vars.clone();
            let f = function("w5", move |(x, y): (Tensor, Tensor)| common::mlp_train_step(&v2, &x, &y));
            let step = |x: &Tensor, y: &Tensor| {
                if mode == "eager" {
                    common::mlp_train_step(&vars, x, y)
                } else {
                    f.call((x.clone(), y.clone()))
                }
            };
            let (loss0, ms) = first_call_ms(|| step(&xall, &y));
            let s = large(|| sink(step(&xall, &y)));
            let extra = [("loss_step0", format!("{:.7}", scalar(&loss0))), threads()];
            rows.push(row("W5_mlp_train_step", mode, s, (mode == "traced").then_some(ms), &extra));
        }
    }
    if only("W6_while_loop") {
        let x0 = put(Tensor::ones([16], DType::F32));
        // Eager: a Rust loop that reads the condition back to the host every trip.
        let body = |x: &Tensor| {
            let mut x = x.clone();
            while scalar(&x.sum_all()) < 1000.0 {
                x = &x * 1.5 + 1.0;
            }
            x
        };
        let ck = ("checksum", format!("{:.4}", common::checksum(&body(&x0))));
        rows.push(row("W6_while_loop", "eager", small(|| sink(body(&x0))), None, &[ck.clone(), threads()]));
        let (_, ms) = first_call_ms(|| w6_while(&x0));
        let ck_traced = ("checksum", format!("{:.4}", common::checksum(&w6_while(&x0))));
        rows.push(row("W6_while_loop", "traced", small(|| sink(w6_while(&x0))), Some(ms), &[ck_traced, threads()]));
    }
    if only("W7_retrace") {
        let xs: Vec<Tensor> = (1..=10).map(|b| put(host_x.narrow(0, 0, b))).collect();
        let f = function("w7", |(x, p): (Tensor, Vec<Tensor>)| common::mlp_logits(&x, &p).softmax(-1));
        let mut firsts: Vec<f64> = xs.iter().map(|x| first_call_ms(|| f.call((x.clone(), params.clone()))).1).collect();
        let total: f64 = firsts.iter().sum();
        let per_shape = format!("[{}]", firsts.iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>().join(","));
        firsts.sort_by(f64::total_cmp);
        let mut k = 0;
        let s = small(|| {
            k = (k + 1) % 10;
            sink(f.call((xs[k].clone(), params.clone())));
        });
        let extra = [("trace_ms_per_shape", per_shape), ("trace_ms_total", format!("{total:.3}")), threads()];
        rows.push(row("W7_retrace", "traced", s, Some(firsts[4]), &extra));
        let mut k = 0;
        let e = small(|| {
            k = (k + 1) % 10;
            sink(common::mlp_logits(&xs[k], &params).softmax(-1));
        });
        rows.push(row("W7_retrace", "eager", e, None, &[threads()]));
    }
    if only("W8_reduction") {
        let a = put(common::uniform(31, &[4096, 1024], 0.0, 1.0));
        let red = |a: &Tensor| a.sum(1, false).mean_all();
        let ck = ("checksum", format!("{:.5}", scalar(&red(&a))));
        let gbps = |us: f64| format!("{:.2}", (16u64 << 20) as f64 / (us * 1e3));
        let gbps = |s: Stats| {
            let mut v = vec![("gbps", gbps(s.median_us))];
            v.extend(s.pipelined_us.map(|p| ("gbps_pipelined", gbps(p))));
            v
        };
        let e = large(|| sink(red(&a)));
        rows.push(row("W8_reduction", "eager", e, None, &[&[ck.clone(), threads()][..], &gbps(e)].concat()));
        let f = function("w8", move |(a,): (Tensor,)| red(&a));
        let (_, ms) = first_call_ms(|| f.call((a.clone(),)));
        let t = large(|| sink(f.call((a.clone(),))));
        rows.push(row("W8_reduction", "traced", t, Some(ms), &[&[ck, threads()][..], &gbps(t)].concat()));
    }
    if only("L1_copy_256MB") && device() != Device::Cpu {
        // On a GPU: one read and one write of 256 MB by a kernel (`x * 1`).
        let x = put(Tensor::ones([64 << 20], DType::F32));
        let s = large(|| sink(&x * 1.0));
        let gbps = 8.0 * (64u64 << 20) as f64 / (s.median_us * 1e3);
        let kind = ("kind", "\"x * 1 (one read, one write)\"".to_string());
        rows.push(row("L1_copy_256MB", "eager", s, None, &[("gbps_read_plus_write", format!("{gbps:.2}")), kind]));
    } else if only("L1_copy_256MB") {
        let n = 64 << 20;
        let src = vec![1.0f32; n];
        let mut dst = vec![0.0f32; n];
        let s = large(|| {
            dst.copy_from_slice(std::hint::black_box(&src));
            sink(&mut dst);
        });
        let gbps = 8.0 * n as f64 / (s.median_us * 1e3);
        rows.push(row(
            "L1_copy_256MB",
            "eager",
            s,
            None,
            &[("gbps_read_plus_write", format!("{gbps:.2}")), ("threads", "1".into())],
        ));
    }
    if only("L3_sgemm_2048") {
        let (a, b) =
            (put(common::uniform(41, &[2048, 2048], -1.0, 1.0)), put(common::uniform(42, &[2048, 2048], -1.0, 1.0)));
        let s = large(|| sink(a.matmul(&b)));
        let gflops = 2.0 * 2048f64.powi(3) / (s.median_us * 1e3);
        rows.push(row("L3_sgemm_2048", "eager", s, None, &[("gflops", format!("{gflops:.1}")), threads()]));
    }
}

fn json(r: &Row) -> String {
    let mut fields = vec![
        "\"framework\":\"tensorjit\"".to_string(),
        format!("\"workload\":\"{}\"", r.workload),
        format!("\"mode\":\"{}\"", r.mode),
    ];
    if let Some(s) = r.stats {
        fields.push(format!("\"median_us\":{:.3},\"p10_us\":{:.3},\"p90_us\":{:.3}", s.median_us, s.p10_us, s.p90_us));
    }
    if let Some(t) = r.trace_ms {
        fields.push(format!("\"trace_ms\":{t:.3}"));
    }
    let extra: Vec<String> = r.extra.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    fields.push(format!("\"extra\":{{{}}}", extra.join(",")));
    format!("{{{}}}", fields.join(","))
}

fn table(rows: &[Row]) {
    println!(
        "{:<22} {:>7} {:>12} {:>12} {:>10} {:>9}  extra",
        "workload", "mode", "median_us", "p90_us", "trace_ms", "tr/eager"
    );
    for r in rows {
        let eager = rows.iter().find(|e| e.workload == r.workload && e.mode == "eager").and_then(|e| e.stats);
        let ratio = match (r.mode, r.stats, eager) {
            ("traced", Some(t), Some(e)) => format!("{:.2}", t.median_us / e.median_us),
            _ => String::new(),
        };
        let (m, p90) = r
            .stats
            .map_or((String::new(), String::new()), |s| (format!("{:.3}", s.median_us), format!("{:.3}", s.p90_us)));
        let tr = r.trace_ms.map_or(String::new(), |t| format!("{t:.3}"));
        let extra: Vec<String> =
            r.extra.iter().filter(|(k, _)| **k != "trace_ms_per_shape").map(|(k, v)| format!("{k}={v}")).collect();
        println!("{:<22} {:>7} {:>12} {:>12} {:>10} {:>9}  {}", r.workload, r.mode, m, p90, tr, ratio, extra.join(" "));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name);
    if let Some(i) = flag("--device") {
        let name = args.get(i + 1).map(String::as_str).unwrap_or("");
        let dev: Device = name.parse().unwrap_or_else(|e| {
            eprintln!("bench: {e}");
            std::process::exit(2)
        });
        tensorjit::init();
        if let Err(e) = Tensor::scalar(0.0f32).to(dev) {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
        let _ = DEVICE.set(dev);
    }
    let only: Option<Vec<String>> =
        flag("--only").and_then(|i| args.get(i + 1)).map(|s| s.split(',').map(str::to_string).collect());
    let filter = |id: &str| only.as_ref().is_none_or(|o| o.iter().any(|p| id.starts_with(p.as_str())));
    let mut rows = Vec::new();
    run(&filter, &mut rows);
    if flag("--json").is_some() {
        for r in &rows {
            println!("{}", json(r));
        }
    } else {
        table(&rows);
    }
}
