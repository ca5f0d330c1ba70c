//! einsum: results against a reference that loops over every assignment of the
//! letters (f64 within rounding, i64 exactly), random equations by proptest, `...`
//! broadcasting, the matmul transpose flags in the traced graph, traced with an unknown
//! batch dim bit-identical to eager, and the errors a user can cause.

mod common;
use common::*;
use proptest::prelude::*;
use tensorjit::prelude::*;

/// The reference: for every assignment of values to the letters, multiply the operands'
/// elements and add the product into the output element (letters only, no `...`).
fn reference(equation: &str, operands: &[&Tensor]) -> (Vec<usize>, Vec<f64>) {
    let (lhs, out) = equation.split_once("->").expect("explicit equations");
    let subs: Vec<Vec<char>> = lhs.split(',').map(|s| s.chars().collect()).collect();
    let out: Vec<char> = out.chars().collect();
    let mut letters: Vec<(char, usize)> = Vec::new();
    for (s, t) in subs.iter().zip(operands) {
        for (&c, &d) in s.iter().zip(t.dims()) {
            if !letters.iter().any(|l| l.0 == c) {
                letters.push((c, d));
            }
        }
    }
    let size = |c: char| letters.iter().find(|l| l.0 == c).map(|l| l.1).unwrap();
    let out_dims: Vec<usize> = out.iter().map(|&c| size(c)).collect();
    let values: Vec<Vec<f64>> = operands.iter().map(|t| f64s(&t.cast(DType::F64))).collect();
    let mut result = vec![0.0; out_dims.iter().product()];
    let total: usize = letters.iter().map(|l| l.1).product();
    for mut f in 0..total {
        let mut value = vec![0; letters.len()];
        for (i, l) in letters.iter().enumerate().rev() {
            value[i] = f % l.1;
            f /= l.1;
        }
        let at = |c: char| value[letters.iter().position(|l| l.0 == c).unwrap()];
        let flat = |s: &[char], dims: &[usize]| s.iter().zip(dims).fold(0, |acc, (&c, &d)| acc * d + at(c));
        let prod: f64 = subs.iter().zip(operands).zip(&values).map(|((s, t), v)| v[flat(s, t.dims())]).product();
        result[flat(&out, &out_dims)] += prod;
    }
    (out_dims, result)
}

fn check(equation: &str, operands: &[&Tensor]) {
    let got = Tensor::einsum(equation, operands);
    let (dims, want) = reference(equation, operands);
    assert_eq!(got.dims(), &dims[..], "{equation}");
    assert_close(&f64s(&got.cast(DType::F64)), &want, 1e-5);
}

#[test]
fn the_usual_equations_match_the_reference() {
    let a = rand_f32(1, &[3, 4], -1.0, 1.0);
    let b = rand_f32(2, &[4, 5], -1.0, 1.0);
    let bt = rand_f32(3, &[5, 4], -1.0, 1.0);
    let sq = rand_f32(4, &[4, 4], -1.0, 1.0);
    let v = rand_f32(5, &[4], -1.0, 1.0);
    let ba = rand_f32(6, &[2, 3, 4], -1.0, 1.0);
    let bb = rand_f32(7, &[2, 4, 5], -1.0, 1.0);
    let bsq = rand_f32(8, &[2, 3, 3], -1.0, 1.0);
    let w = rand_f32(9, &[3, 3, 2, 3], -1.0, 1.0);
    check("ij,jk->ik", &[&a, &b]);
    check("ij,kj->ik", &[&a, &bt]);
    check("ji,jk->ik", &[&a.t(), &b]);
    check("ji,kj->ik", &[&a.t(), &bt]);
    check("ij,jk->ki", &[&a, &b]);
    check("bij,bjk->bik", &[&ba, &bb]);
    check("bij,bjk->kbi", &[&ba, &bb]);
    check("bij,jk->bik", &[&ba, &b]);
    check("ij->ji", &[&a]);
    check("ij->", &[&a]);
    check("ij->j", &[&a]);
    check("ii->", &[&sq]);
    check("ii->i", &[&sq]);
    check("bii->bi", &[&bsq]);
    check("iii->i", &[&rand_f32(18, &[3, 3, 3], -1.0, 1.0)]);
    check(",ccc->c", &[&Tensor::scalar(2.5f32), &rand_f32(19, &[2, 2, 2], -1.0, 1.0)]);
    check("iji->j", &[&w.narrow(3, 0, 3).sum(2, false)]);
    check("i,i->", &[&v, &v]);
    check("i,j->ij", &[&v, &rand_f32(10, &[3], -1.0, 1.0)]);
    check("ij,ij->ij", &[&a, &a.exp()]);
    check("ij,ij->i", &[&a, &a.exp()]);
    check("bi,ij,bj->b", &[&rand_f32(11, &[6, 4], -1.0, 1.0), &sq, &rand_f32(12, &[6, 4], -1.0, 1.0)]);
    check("abcd,cdb->ab", &[&w, &rand_f32(13, &[2, 3, 3], -1.0, 1.0)]);
    check("abcd,dce->aeb", &[&w, &rand_f32(14, &[3, 2, 5], -1.0, 1.0)]);
    check("ij,jk,kl->il", &[&a, &b, &rand_f32(15, &[5, 2], -1.0, 1.0)]);
    check("i->", &[&Tensor::zeros([0], DType::F32)]);
    check("ij,jk->ik", &[&rand_f32(16, &[3, 0], -1.0, 1.0), &rand_f32(17, &[0, 2], -1.0, 1.0)]);
}

#[test]
fn implicit_outputs_and_integers() {
    let a = rand_f64(20, &[3, 4], -1.0, 1.0);
    let b = rand_f64(21, &[4, 5], -1.0, 1.0);
    // No `->`: the letters used once, alphabetically.
    assert_eq!(f64s(&Tensor::einsum("ij,jk", &[&a, &b])), f64s(&Tensor::einsum("ij,jk->ik", &[&a, &b])));
    assert_eq!(f64s(&Tensor::einsum("ba", &[&a])), f64s(&a.t()));
    assert_eq!(Tensor::einsum("ii", &[&rand_f64(22, &[3, 3], -1.0, 1.0)]).rank(), 0);
    // Integers are exact.
    let ints = |seed: u64, dims: &[usize]| rand_f64(seed, dims, -50.0, 50.0).floor().cast(DType::I64);
    let (x, y, z) = (ints(23, &[3, 4, 5]), ints(24, &[5, 4, 2]), ints(25, &[2, 3]));
    let got = Tensor::einsum("abc,cbd,da->b", &[&x, &y, &z]);
    let (_, want) = reference("abc,cbd,da->b", &[&x, &y, &z]);
    assert_eq!(got.to_vec::<i64>().unwrap(), want.iter().map(|&v| v as i64).collect::<Vec<_>>());
}

#[test]
fn ellipsis_axes_broadcast() {
    let a = rand_f64(30, &[2, 1, 3, 4], -1.0, 1.0);
    let b = rand_f64(31, &[5, 4, 2], -1.0, 1.0);
    let got = Tensor::einsum("...ij,...jk->...ik", &[&a, &b]);
    assert_eq!(got.dims(), &[2, 5, 3, 2]);
    let want = a.matmul(&b);
    assert_close(&f64s(&got), &f64s(&want), 1e-12);
    // `...` in the middle and in front; implicit output puts it first.
    let x = rand_f64(32, &[3, 6, 7, 2], -1.0, 1.0);
    let got = Tensor::einsum("i...j->j...i", &[&x]);
    assert_eq!(f64s(&got), f64s(&x.permute(&[3, 1, 2, 0])));
    let got = Tensor::einsum("...i,i", &[&x, &rand_f64(33, &[2], 1.0, 1.0)]);
    assert_close(&f64s(&got), &f64s(&x.sum(-1, false)), 1e-12);
    // A `...` that stands for no axes.
    let v = rand_f64(34, &[4], -1.0, 1.0);
    assert_eq!(f64s(&Tensor::einsum("...i->...", &[&v])), f64s(&v.sum_all()));
}

#[test]
fn transposed_operands_use_matmul_flags_not_copies() {
    let f = tensorjit::function("einsum_flags", |(a, b): (Tensor, Tensor)| Tensor::einsum("ji,kj->ik", &[&a, &b]));
    let (a, b) = (rand_f32(40, &[4, 3], -1.0, 1.0), rand_f32(41, &[5, 4], -1.0, 1.0));
    let got = f.call((a.clone(), b.clone()));
    assert_eq!(f32s(&got), f32s(&a.matmul_t(&b, true, true)));
    let text = f.concrete_functions()[0].ir_text();
    assert!(text.contains("matmul[transpose_a=true, transpose_b=true]"), "{text}");
    assert!(!text.contains("transpose["), "no copy of an operand:\n{text}");
}

fn contractions(x: &Tensor, w: &Tensor, m: &Tensor) -> Tensor {
    let h = Tensor::einsum("bti,io->bto", &[x, w]);
    let attn = Tensor::einsum("bqd,bkd->bqk", &[&h, &h]).softmax(-1);
    let mixed = Tensor::einsum("bqk,bkd->bqd", &[&attn, &h]);
    let quad = Tensor::einsum("bti,ij,btj->b", &[x, m, x]);
    let diag = Tensor::einsum("ii->i", &[m]);
    Tensor::einsum("bto->b", &[&mixed]) + quad + diag.sum_all()
}

#[tf_function(input_signature = [TensorSpec::new(DType::F32, &[None, Some(5), Some(3)]),
                                 TensorSpec::new(DType::F32, &[Some(3), Some(4)]),
                                 TensorSpec::new(DType::F32, &[Some(3), Some(3)])])]
fn traced_contractions(x: &Tensor, w: &Tensor, m: &Tensor) -> Tensor {
    contractions(x, w, m)
}

#[test]
fn traced_with_an_unknown_batch_dim_matches_eager() {
    let (w, m) = (rand_f32(50, &[3, 4], -1.0, 1.0), rand_f32(51, &[3, 3], -1.0, 1.0));
    for n in [1, 3, 8] {
        let x = rand_f32(52 + n as u64, &[n, 5, 3], -1.0, 1.0);
        let traced = traced_contractions(&x, &w, &m);
        let eager = contractions(&x, &w, &m);
        assert_eq!(traced.dims(), &[n]);
        let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&traced), bits(&eager), "batch {n}");
    }
    assert_eq!(traced_contractions::tracing_count(), 1);
}

#[tf_function(input_signature = [TensorSpec::new(DType::F32, &[None, None, Some(3)]),
                                 TensorSpec::new(DType::F32, &[Some(3), Some(4)])])]
fn two_unknown_dims(x: &Tensor, w: &Tensor) -> Tensor {
    let scores = Tensor::einsum("bti,bti->bt", &[x, x]);
    let mixed = Tensor::einsum("bti,ij,btj->bt", &[x, &w.matmul_t(w, false, true), x]);
    scores + mixed
}

#[tf_function(input_signature = [TensorSpec::new(DType::F32, &[None, None, Some(3)]),
                                 TensorSpec::new(DType::F32, &[Some(3), Some(4)])])]
fn dense_over_a_sequence(x: &Tensor, w: &Tensor) -> Tensor {
    Tensor::einsum("bti,io->bto", &[x, w])
}

#[tf_function(input_signature = [TensorSpec::new(DType::F32, &[None, None, Some(3)]),
                                 TensorSpec::new(DType::F32, &[None, Some(3), Some(4)])])]
fn merge_of_unknown_summed_axes(x: &Tensor, y: &Tensor) -> Tensor {
    Tensor::einsum("bti,tio->bo", &[x, y])
}

#[test]
fn two_unknown_dims_trace_unless_summed_axes_must_merge_with_them() {
    let w = rand_f32(56, &[3, 4], -1.0, 1.0);
    for (k, dims) in [[2, 5, 3], [1, 7, 3], [3, 1, 3]].into_iter().enumerate() {
        let x = rand_f32(57 + k as u64, &dims, -1.0, 1.0);
        let eager = Tensor::einsum("bti,bti->bt", &[&x, &x])
            + Tensor::einsum("bti,ij,btj->bt", &[&x, &w.matmul_t(&w, false, true), &x]);
        assert_eq!(f32s(&two_unknown_dims(&x, &w)), f32s(&eager), "{dims:?}");
        let traced = dense_over_a_sequence(&x, &w);
        assert_eq!(traced.dims(), &[dims[0], dims[1], 4]);
        assert_eq!(f32s(&traced), f32s(&Tensor::einsum("bti,io->bto", &[&x, &w])), "{dims:?}");
        assert_eq!(f32s(&traced), f32s(&x.matmul(&w)), "one GEMM, as a matmul of the same operands");
    }
    // Summing t and i together merges an unknown t with a known i while b is unknown
    // too: a clear error.
    let (x, y) = (rand_f32(60, &[2, 5, 3], -1.0, 1.0), rand_f32(61, &[5, 3, 4], -1.0, 1.0));
    let msg = panic_message(|| drop(merge_of_unknown_summed_axes(&x, &y)));
    assert!(msg.contains("einsum: \"bti,tio->bo\"") && msg.contains("merges the summed axes of [?,?,3]"), "{msg}");
    assert!(msg.contains("all but one axis of [?,?]"), "{msg}");
    assert_eq!(Tensor::einsum("bti,tio->bo", &[&x, &y]).dims(), &[2, 4], "eager has every size");
    // b's own axes merge into the matmul's N: splitting two unknown ones back is refused.
    let f = tensorjit::function("split_unknown", |(x, y): (Tensor, Tensor)| Tensor::einsum("ij,jkl->ikl", &[&x, &y]))
        .with_input_signature(vec![
            TensorSpec::new(DType::F32, &[None, Some(3)]),
            TensorSpec::new(DType::F32, &[Some(3), None, None]),
        ]);
    let (x, y) = (rand_f32(62, &[2, 3], -1.0, 1.0), rand_f32(63, &[3, 4, 5], -1.0, 1.0));
    let msg = panic_message(std::panic::AssertUnwindSafe(|| drop(f.call((x.clone(), y.clone())))));
    assert!(msg.contains("its matmul splits the axes of [3,?,?]"), "{msg}");
    assert_eq!(Tensor::einsum("ij,jkl->ikl", &[&x, &y]).dims(), &[2, 4, 5]);
}

#[test]
fn errors_name_the_equation_and_the_problem() {
    let a = rand_f32(62, &[2, 3], -1.0, 1.0);
    let b = rand_f32(63, &[4, 5], -1.0, 1.0);
    let msg = panic_message(|| drop(Tensor::einsum("ij,jk->ik", &[&a, &b])));
    assert!(msg.contains("einsum: \"ij,jk->ik\": 'j' has size 3 in operand 0 but 4 in operand 1"), "{msg}");
    assert!(msg.contains("f32[2,3]") && msg.contains("f32[4,5]") && msg.contains("einsum.rs"), "{msg}");
    let msg = panic_message(|| drop(Tensor::einsum("ij,jk->ik", &[&a, &b.cast(DType::F64)])));
    assert!(msg.contains("operands of dtypes f32 and f64"), "{msg}");
    let msg = panic_message(|| drop(Tensor::einsum("ijk->i", &[&a])));
    assert!(msg.contains("names 3 axes, but operand 0 has rank 2"), "{msg}");
    let msg = panic_message(|| drop(Tensor::einsum("ij->q", &[&a])));
    assert!(msg.contains("names 'q', which no input has"), "{msg}");
    let msg = panic_message(|| drop(Tensor::einsum("ij", &[])));
    assert!(msg.contains("needs at least one operand"), "{msg}");
    let msg = panic_message(|| drop(Tensor::einsum("i", &[&a.gt(0.0).reshape([-1])])));
    assert!(msg.contains("needs numeric operands, got bool"), "{msg}");
    let msg = panic_message(|| drop(Tensor::einsum("ii->i", &[&a])));
    assert!(msg.contains("'i' has size 2 in operand 0 but 3 in operand 0"), "{msg}");
}

/// A random equation over up to three operands: letters from `abcd` with random sizes,
/// repeated letters (diagonals) allowed, an output of distinct letters in random order.
fn random_case(seed: u64) -> (String, Vec<Tensor>) {
    let r = rand_vec(seed, 64, 0.0, 1.0);
    let mut next = r.iter().copied();
    let mut pick = |n: usize| ((next.next().unwrap() * n as f64) as usize).min(n - 1);
    let sizes: Vec<usize> = (0..4).map(|_| 1 + pick(3)).collect();
    let count = 1 + pick(3);
    let mut subs = Vec::new();
    for _ in 0..count {
        let len = pick(4);
        subs.push((0..len).map(|_| (b'a' + pick(4) as u8) as char).collect::<String>());
    }
    let mut used: Vec<char> = subs.iter().flat_map(|s| s.chars()).collect();
    used.sort_unstable();
    used.dedup();
    let mut out = Vec::new();
    for c in used {
        if pick(2) == 1 {
            let at = pick(out.len() + 1);
            out.insert(at, c);
        }
    }
    let equation = format!("{}->{}", subs.join(","), out.into_iter().collect::<String>());
    let operands = subs
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let dims: Vec<usize> = s.chars().map(|c| sizes[(c as u8 - b'a') as usize]).collect();
            rand_f64(seed * 8 + k as u64, &dims, -1.0, 1.0)
        })
        .collect();
    (equation, operands)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn random_equations_match_the_reference(seed in 0u64..1 << 40) {
        let (equation, operands) = random_case(seed);
        let refs: Vec<&Tensor> = operands.iter().collect();
        let got = Tensor::einsum(&equation, &refs);
        let (dims, want) = reference(&equation, &refs);
        prop_assert_eq!(got.dims(), &dims[..], "{}", equation);
        let got = f64s(&got);
        for (g, w) in got.iter().zip(&want) {
            prop_assert!((g - w).abs() <= 1e-12 * (1.0 + w.abs()), "{}: {} vs {}", equation, g, w);
        }
    }
}
