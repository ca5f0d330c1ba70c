use std::time::Instant;
use tensorjit::prelude::*;
fn med(mut f: impl FnMut()) -> f64 {
    let mut v = vec![];
    for _ in 0..15 {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[7]
}
fn main() {
    let n = 4_000_000;
    let x =
        Tensor::from_vec((0..n).map(|i| ((i as f32) * 0.618).fract() * 4.0 - 2.0).collect::<Vec<_>>(), [n]).unwrap();
    let ft = tensorjit::function("t", |x: Tensor| x.tanh());
    let fs = tensorjit::function("s", |x: Tensor| x.sigmoid());
    let fa = tensorjit::function("a", |x: Tensor| &x * 1.5 + 0.5);
    ft.call(x.clone());
    fs.call(x.clone());
    fa.call(x.clone());
    println!(
        "eager tanh {:.2} ms",
        med(|| {
            x.tanh();
        })
    );
    println!(
        "jit   tanh {:.2} ms",
        med(|| {
            ft.call(x.clone());
        })
    );
    println!(
        "eager sigm {:.2} ms",
        med(|| {
            x.sigmoid();
        })
    );
    println!(
        "jit   sigm {:.2} ms",
        med(|| {
            fs.call(x.clone());
        })
    );
    println!(
        "eager axpb {:.2} ms",
        med(|| {
            let _ = &x * 1.5;
        })
    );
    println!(
        "jit   axpb {:.2} ms",
        med(|| {
            fa.call(x.clone());
        })
    );
}
