//! Memory planning in compiled functions: a kernel writes its output over an input that
//! dies at it — when nothing else holds that buffer — and the results stay the
//! interpreter's and eager bits; a buffer something else still sees is never touched.

mod common;
use common::*;
use tensorjit::prelude::*;
use tensorjit::trace::backend::interpret;

fn bits(t: &Tensor) -> Vec<u32> {
    f32s(t).iter().map(|v| v.to_bits()).collect()
}

fn plan_of(f: &Function<Vec<Tensor>, Tensor>) -> String {
    let text = f.concrete_functions()[0].compiled_text();
    text.split("plan:").nth(1).unwrap_or_default().to_string()
}

/// A matmul feeding a cheap kernel and a staged one (tanh): both run over the dying
/// matmul outputs, and every call gives the interpreter's and the eager bits.
#[test]
fn kernels_overwrite_dying_intermediates_with_the_same_bits() {
    let body = |v: &[Tensor]| {
        let h = v[0].matmul(&v[1]);
        let a = (&h + &v[2]).relu();
        let g = a.matmul(&v[3]);
        (&g * 0.5 + 1.0).tanh() * &v[4]
    };
    let f = function("in_place", move |v: Vec<Tensor>| body(&v));
    for (seed, (m, k, n)) in [(1u64, (5usize, 7usize, 9usize)), (2, (33, 20, 300)), (3, (1, 4, 1))] {
        let args = vec![
            rand_f32(seed * 10, &[m, k], -2.0, 2.0),
            rand_f32(seed * 10 + 1, &[k, n], -1.0, 1.0),
            rand_f32(seed * 10 + 2, &[n], -0.5, 0.5),
            rand_f32(seed * 10 + 3, &[n, n], -1.0, 1.0),
            rand_f32(seed * 10 + 4, &[m, n], -3.0, 3.0),
        ];
        let keep: Vec<Vec<u32>> = args.iter().map(bits).collect();
        for _ in 0..2 {
            let jit = f.call(args.clone());
            let cf = f.concrete_functions().into_iter().find(|c| {
                c.graph.params.len() == 5 && {
                    let s = c.graph.value_type(c.graph.params[0]).shape.dims().to_vec();
                    s == [m, k]
                }
            });
            let Some(cf) = cf else { panic!("no concrete function for ({m},{k},{n})") };
            assert_eq!(cf.backend(), "cranelift");
            let interp = interpret(&cf.graph, &args, &[]).expect("the interpreter runs it").remove(0);
            assert_eq!(bits(&jit), bits(&interp), "({m},{k},{n}): jit vs interpreter");
            assert_eq!(bits(&jit), bits(&body(&args)), "({m},{k},{n}): jit vs eager");
        }
        // The caller's tensors are never written.
        assert_eq!(args.iter().map(bits).collect::<Vec<_>>(), keep, "an argument changed");
    }
    let plan = plan_of(&f);
    assert_eq!(plan.matches(" (over %").count(), 2, "both kernels run in place:\n{plan}");
}

/// A dying input still seen through a reshaped view (or returned, or a parameter) is
/// read, never overwritten.
#[test]
fn shared_buffers_are_never_overwritten() {
    let body = |v: &[Tensor]| {
        let h = v[0].matmul(&v[1]);
        let view = h.reshape([-1i64]);
        let y = (&h * 2.0).relu();
        let z = (&v[0] + 1.0).exp();
        (view, y, z)
    };
    let f = function("shared", move |v: Vec<Tensor>| body(&v));
    let args = vec![rand_f32(41, &[6, 8], -1.0, 1.0), rand_f32(42, &[8, 10], -1.0, 1.0)];
    let x_bits = bits(&args[0]);
    let (view, y, z) = f.call(args.clone());
    let (ev, ey, ez) = body(&args);
    assert_eq!(bits(&view), bits(&ev), "the view of the matmul output was overwritten");
    assert_eq!(bits(&y), bits(&ey));
    assert_eq!(bits(&z), bits(&ez));
    assert_eq!(bits(&args[0]), x_bits, "a parameter was overwritten");
}
