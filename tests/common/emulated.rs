//! Running typed PTX entries on the reference interpreter as the GPU backend launches
//! them, and the random operands of their checks (tests/ptx_typed.rs,
//! tests/ptx_reductions_draws.rs).

use tensorjit::prelude::*;
use tensorjit_jit::ptx::emulate::{Arg, Program};
use tensorjit_jit::ptx::{Elem, BLOCK};

use super::rand_vec;

/// Random elements of `elem` (`seed`), a few close together so that comparisons tie,
/// with the type's special values mixed in.
pub fn random(elem: Elem, seed: u64, dims: &[usize]) -> Tensor {
    let n: usize = dims.iter().product();
    let r = rand_vec(seed, n, -4.0, 4.0);
    let pick = |i: usize| i % 5 == 3;
    let t = match elem {
        Elem::F32 => {
            let specials =
                [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 3e9, -3e9, 1e20, 2.5, -2.5, 0.5, -1e-40];
            let v: Vec<f32> = (0..n)
                .map(|i| {
                    if pick(i) {
                        specials[(i / 5 + seed as usize) % specials.len()]
                    } else {
                        r[i].round() as f32 * 0.75
                    }
                })
                .collect();
            Tensor::from_vec(v, dims.to_vec())
        }
        Elem::F64 => {
            let specials = [
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                0.0,
                -0.0,
                3e9,
                -3e20,
                1e300,
                2.5,
                -2.5,
                0.5,
                -5e-324,
                1e-310,
            ];
            let v: Vec<f64> = (0..n)
                .map(|i| if pick(i) { specials[(i / 5 + seed as usize) % specials.len()] } else { r[i] * 1.5 })
                .collect();
            Tensor::from_vec(v, dims.to_vec())
        }
        Elem::I32 => {
            let specials = [i32::MIN, i32::MAX, 0, -1, 1 << 24 | 1];
            let v: Vec<i32> = (0..n)
                .map(|i| if pick(i) { specials[(i / 5) % specials.len()] } else { r[i].round() as i32 })
                .collect();
            Tensor::from_vec(v, dims.to_vec())
        }
        Elem::I64 => {
            let specials = [i64::MIN, i64::MAX, 0, -1, 1 << 40 | 1, (1 << 33) - 7];
            let v: Vec<i64> = (0..n)
                .map(|i| if pick(i) { specials[(i / 5) % specials.len()] } else { r[i].round() as i64 })
                .collect();
            Tensor::from_vec(v, dims.to_vec())
        }
        Elem::Bool => Tensor::from_vec(r.iter().map(|x| *x > 0.0).collect::<Vec<bool>>(), dims.to_vec()),
    };
    t.expect("a valid tensor")
}

/// Runs an entry on the emulator as the GPU backend launches it (grid-stride loops on
/// at most two blocks): `inputs`, then an output of `out_bytes` bytes, then the u64
/// `values`.
pub fn run(ptx: &str, inputs: Vec<Vec<u8>>, out_bytes: usize, values: &[usize]) -> Vec<u8> {
    let program = Program::parse(ptx).expect("the emulator reads the entry");
    let n_in = inputs.len();
    let mut buffers = inputs;
    buffers.push(vec![0xab; out_bytes]);
    let mut args: Vec<Arg> = (0..=n_in).map(Arg::Buffer).collect();
    args.extend(values.iter().map(|&v| Arg::U64(v as u64)));
    let blocks = values.first().map_or(1, |n| n.div_ceil(BLOCK as usize)).clamp(1, 2) as u32;
    program.run_bytes(blocks, BLOCK, &args, &mut buffers).expect("the entry runs");
    buffers.pop().unwrap_or_default()
}

/// Runs an entry with `inputs` and an output buffer that starts as `out` (zeros for the
/// scatters, as the backend clears it first).
pub fn run_into(ptx: &str, inputs: Vec<Vec<u8>>, out: Vec<u8>, values: &[usize]) -> Vec<u8> {
    let program = Program::parse(ptx).expect("the emulator reads the entry");
    let n_in = inputs.len();
    let mut buffers = inputs;
    buffers.push(out);
    let mut args: Vec<Arg> = (0..=n_in).map(Arg::Buffer).collect();
    args.extend(values.iter().map(|&v| Arg::U64(v as u64)));
    program.run_bytes(2, BLOCK, &args, &mut buffers).expect("the entry runs");
    buffers.pop().unwrap_or_default()
}
