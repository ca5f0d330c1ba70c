//! Running PTX entries on the reference interpreter as the GPU backend launches them:
//! fused kernels, device plans whose kernels and `while` loops are emulated PTX
//! (tests/ptx_emulated.rs, tests/ptx_loops.rs), typed entries and the random operands
//! of their checks (tests/ptx_typed.rs, tests/ptx_reductions_draws.rs).

use tensorjit::prelude::*;
use tensorjit_jit::device_plan::{DevicePlan, Launcher, LoopModule};
use tensorjit_jit::kernel::Kernel;
use tensorjit_jit::ptx::emulate::{Arg, Program};
use tensorjit_jit::ptx::{render_kernel, vectorized, Elem, BLOCK};

use super::{f32s, rand_vec};

/// Runs kernel `k` as the GPU backend launches it (`Gpu::launch`: one thread per
/// element, or per four with the vector loop), on a grid of at most `max_blocks`.
pub fn emulate(k: &Kernel, inputs: &[Vec<f32>], rows: usize, cols: usize, max_blocks: usize) -> Vec<Vec<f32>> {
    let n = rows * cols;
    let program = Program::parse(&render_kernel(k, "k")).expect("the emulator reads the kernel");
    let mut buffers: Vec<Vec<f32>> = inputs.to_vec();
    buffers.extend((0..k.outputs.len()).map(|_| vec![f32::from_bits(0x7fc0_dead); n]));
    let mut args: Vec<Arg> = (0..buffers.len()).map(Arg::Buffer).collect();
    args.extend([Arg::U64(n as u64), Arg::U64(cols.max(1) as u64)]);
    let threads = if vectorized(k) { n.div_ceil(4) } else { n };
    let blocks = threads.div_ceil(BLOCK as usize).clamp(1, max_blocks) as u32;
    program.run(blocks, BLOCK, &args, &mut buffers).expect("the kernel runs");
    buffers.split_off(inputs.len())
}

/// Fused kernels as PTX on the emulator, over host tensors: the launcher of a device
/// plan on `Device::Cpu`, so a whole traced function runs through `DevicePlan` with
/// every kernel step (and every `while` loop that qualifies) executed as rendered PTX.
pub struct EmulatedPtx;

impl Launcher for EmulatedPtx {
    fn name(&self) -> &'static str {
        "emulated ptx"
    }

    fn launch(
        &self,
        k: &Kernel,
        inputs: &[&Tensor],
        rows: usize,
        cols: usize,
        shapes: &[&tensorjit::Shape],
    ) -> Result<Vec<Tensor>, tensorjit::Error> {
        let data: Vec<Vec<f32>> = inputs.iter().map(|t| f32s(t)).collect();
        let outs = emulate(k, &data, rows, cols, 2);
        outs.into_iter().zip(shapes).map(|(v, s)| Tensor::from_vec(v, (*s).clone())).collect()
    }

    fn runs_loops(&self) -> bool {
        true
    }

    /// As `PtxLauncher::launch_loop`: one block; the arena starts as garbage.
    fn launch_loop(
        &self,
        l: &LoopModule,
        init: &[&Tensor],
        outer: &[&Tensor],
        max: Option<u64>,
    ) -> Result<Vec<Tensor>, tensorjit::Error> {
        if init.iter().zip(&l.shapes).any(|(t, s)| t.shape() != s) {
            return Err(tensorjit::Error::Internal(format!("{} given loop variables not of {:?}", l.name, l.shapes)));
        }
        let program = Program::parse(&l.ptx).map_err(tensorjit::Error::Internal)?;
        let mut buffers: Vec<Vec<f32>> = vec![vec![f32::from_bits(0x7fc0_beef); l.arena_len.max(1)]];
        buffers.extend(init.iter().chain(outer).map(|t| f32s(t)));
        let first_out = buffers.len();
        buffers.extend(l.shapes.iter().map(|s| vec![f32::from_bits(0x7fc0_dead); s.numel()]));
        let mut args: Vec<Arg> = (0..buffers.len()).map(Arg::Buffer).collect();
        args.push(Arg::U64(max.unwrap_or(u64::MAX)));
        program.run(1, BLOCK, &args, &mut buffers).map_err(tensorjit::Error::Internal)?;
        buffers.drain(first_out..).zip(&l.shapes).map(|(v, s)| Tensor::from_vec(v, s.clone())).collect()
    }
}

/// `graph` as a device plan whose kernels (and loops) run as emulated PTX.
pub fn emulated_plan(graph: &tensorjit::ir::Graph) -> DevicePlan {
    let (optimized, plan) = tensorjit_jit::optimized_plan(graph).ok().flatten().expect("a plan");
    DevicePlan::new(&optimized, plan, Device::Cpu, Box::new(EmulatedPtx)).expect("the plan is made")
}

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
