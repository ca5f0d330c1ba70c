//! Compiled code is freed when its concrete function leaves the trace cache (or the
//! function is dropped): a function retraced for ever new shapes keeps only as many
//! compiled modules as its cache holds. (Alone in its binary: it counts the process's
//! live modules.)

mod common;
use common::rand_f32;
use tensorjit::prelude::*;
use tensorjit_jit::codegen::live_modules;

#[test]
fn evicted_concrete_functions_free_their_compiled_code() {
    let before = live_modules();
    // A matmul and a kernel: an arena plan, so kernels and an entry point per trace.
    let f = function("evict", |(x, w): (Tensor, Tensor)| (x.matmul(&w) * 2.0 + 1.0).tanh()).with_cache_size(2);
    let w = rand_f32(2, &[4, 3], -1.0, 1.0);
    for n in 1..=2 {
        f.call((rand_f32(n as u64, &[n, 4], -1.0, 1.0), w.clone()));
    }
    let per_two = live_modules() - before;
    assert!(per_two >= 2, "two traces compiled code ({per_two} modules)");
    for n in 3..=30 {
        let x = rand_f32(n as u64, &[n, 4], -1.0, 1.0);
        let want = (x.matmul(&w) * 2.0 + 1.0).tanh();
        assert_eq!(f.call((x, w.clone())).to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
    }
    assert_eq!(f.tracing_count(), 30);
    assert_eq!(f.concrete_functions().len(), 2);
    assert_eq!(live_modules() - before, per_two, "28 evicted traces left their code behind");
    drop(f);
    assert_eq!(live_modules(), before, "a dropped function's code is freed");
}
