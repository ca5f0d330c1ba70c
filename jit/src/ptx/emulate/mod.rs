//! A reference interpreter of the PTX subset this renderer emits, so that kernels are
//! checked for their *results* on machines without a GPU (ptxas only checks that they
//! assemble). The threads of a block run one after another, each until it finishes or
//! reaches a warp shuffle or a barrier; a shuffle completes once every running thread
//! of its warp has reached it, a barrier once every running thread of the block has —
//! the semantics of converged warps, which is how the renderer uses them (the row
//! reduction). Shared memory is one array per block. Float arithmetic is Rust's f32
//! (IEEE, round to nearest even, as the `.rn` instructions).

mod parse;

use parse::{Ins, Kind, Operand};

/// One kernel argument, in the entry's parameter order.
#[derive(Clone, Copy, Debug)]
pub enum Arg {
    /// Buffer `i` of the launch's buffers (passed as a pointer).
    Buffer(usize),
    U64(u64),
}

/// A parsed entry.
pub struct Program {
    params: Vec<String>,
    code: Vec<Ins>,
    regs: [usize; 4],
    /// f32 elements of the module's one `.shared` array (at address 0 of its space).
    shared: usize,
    /// The words of the module's one `.const .b64` array (at address 0 of its space).
    constants: Vec<u64>,
}

/// Buffers live at `(i + 1) << 40` in the emulated address space.
const SPACE: u32 = 40;

impl Program {
    /// Runs the entry on a grid of `blocks × threads` with `args` (one per parameter),
    /// reading and writing `buffers` (f32 elements).
    pub fn run(&self, blocks: u32, threads: u32, args: &[Arg], buffers: &mut [Vec<f32>]) -> Result<(), String> {
        let mut bytes: Vec<Vec<u8>> =
            buffers.iter().map(|b| b.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
        let result = self.run_bytes(blocks, threads, args, &mut bytes);
        for (b, raw) in buffers.iter_mut().zip(&bytes) {
            for (x, w) in b.iter_mut().zip(raw.chunks_exact(4)) {
                *x = f32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            }
        }
        result
    }

    /// [`run`](Self::run) on buffers of bytes (little-endian elements of any type: the
    /// typed kernels' `bool`s, `i32`s and `i64`s).
    pub fn run_bytes(&self, blocks: u32, threads: u32, args: &[Arg], buffers: &mut [Vec<u8>]) -> Result<(), String> {
        if args.len() != self.params.len() {
            return Err(format!("{} arguments for {} parameters", args.len(), self.params.len()));
        }
        let values: Vec<u64> = args
            .iter()
            .map(|a| match *a {
                Arg::Buffer(i) => ((i as u64) + 1) << SPACE,
                Arg::U64(v) => v,
            })
            .collect();
        for b in 0..blocks {
            let mut block: Vec<Thread> = (0..threads)
                .map(|t| Thread {
                    regs: self.regs.map(|n| vec![0u64; n]),
                    pc: 0,
                    state: State::Running,
                    tid: t,
                    ntid: threads,
                    ctaid: b,
                    nctaid: blocks,
                })
                .collect();
            let mut shared = vec![0.0f32; self.shared];
            loop {
                for th in block.iter_mut().filter(|t| t.state == State::Running) {
                    th.run(self, &values, buffers, &mut shared)?;
                }
                if block.iter().all(|t| t.state == State::Done) {
                    break;
                }
                if !release(&mut block) {
                    return Err(
                        "the threads of a block wait on each other forever (divergent shuffle or barrier)".into()
                    );
                }
            }
        }
        Ok(())
    }
}

/// Where a thread stands.
#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Running,
    Done,
    /// At `bar.sync`.
    Barrier,
    /// At `shfl.sync.down`: writes the value of `value` from `offset` lanes up into
    /// register `dst` (its own value past the warp's end).
    Shuffle {
        dst: (Kind, usize),
        value: u64,
        offset: u64,
    },
}

/// Completes the shuffles of warps whose running threads all reached one, then a
/// barrier every running thread of the block reached; whether any thread moved on.
fn release(block: &mut [Thread]) -> bool {
    let mut moved = false;
    for warp in block.chunks_mut(32) {
        let waiting = |t: &Thread| matches!(t.state, State::Shuffle { .. } | State::Done);
        if !warp.iter().all(waiting) || warp.iter().all(|t| t.state == State::Done) {
            continue;
        }
        let values: Vec<Option<u64>> =
            warp.iter().map(|t| if let State::Shuffle { value, .. } = t.state { Some(value) } else { None }).collect();
        for (lane, t) in warp.iter_mut().enumerate() {
            if let State::Shuffle { dst, value, offset } = t.state {
                let src = lane + offset as usize;
                t.regs[dst.0 as usize][dst.1] =
                    values.get(src).copied().flatten().filter(|_| src < 32).unwrap_or(value);
                t.state = State::Running;
                moved = true;
            }
        }
    }
    if !moved && block.iter().all(|t| matches!(t.state, State::Barrier | State::Done)) {
        for t in block.iter_mut().filter(|t| t.state == State::Barrier) {
            t.state = State::Running;
            moved = true;
        }
    }
    moved
}

struct Thread {
    regs: [Vec<u64>; 4],
    pc: usize,
    state: State,
    tid: u32,
    ntid: u32,
    ctaid: u32,
    nctaid: u32,
}

fn f(bits: u64) -> f32 {
    f32::from_bits(bits as u32)
}

fn fb(v: f32) -> u64 {
    v.to_bits() as u64
}

impl Thread {
    fn get(&self, o: &Operand, params: &[u64]) -> Result<u64, String> {
        Ok(match o {
            Operand::Reg(k, i) => self.regs[*k as usize][*i],
            Operand::Imm(v) => *v,
            Operand::Param(i) => params[*i],
            Operand::Special(s) => u64::from(match *s {
                "%tid.x" => self.tid,
                "%ntid.x" => self.ntid,
                "%ctaid.x" => self.ctaid,
                _ => self.nctaid,
            }),
            other => return Err(format!("{other:?} is not a value")),
        })
    }

    fn set(&mut self, o: &Operand, v: u64) -> Result<(), String> {
        match o {
            Operand::Reg(k, i) => {
                self.regs[*k as usize][*i] = v;
                Ok(())
            }
            other => Err(format!("cannot write {other:?}")),
        }
    }

    /// The `bytes` bytes at address operand `o` (aligned to `align`).
    fn mem<'a>(
        &self,
        o: &Operand,
        buffers: &'a mut [Vec<u8>],
        bytes: usize,
        align: u64,
    ) -> Result<&'a mut [u8], String> {
        let Operand::Addr(base) = o else { return Err(format!("{o:?} is not an address")) };
        let addr = match **base {
            Operand::Reg(k, i) => self.regs[k as usize][i],
            ref other => return Err(format!("an address in {other:?}")),
        };
        let (buf, off) = ((addr >> SPACE) as usize, addr & ((1 << SPACE) - 1));
        let b = buf
            .checked_sub(1)
            .and_then(|i| buffers.get_mut(i))
            .ok_or_else(|| format!("address {addr:#x}: no buffer"))?;
        if !off.is_multiple_of(align) {
            return Err(format!("misaligned access at {addr:#x}"));
        }
        let (at, len) = (off as usize, b.len());
        b.get_mut(at..at + bytes)
            .ok_or_else(|| format!("access at byte {at} (+{bytes}) beyond a buffer of {len} bytes"))
    }

    /// A little-endian load of `bytes` (1, 4 or 8) bytes, zero-extended.
    fn load(&self, o: &Operand, buffers: &mut [Vec<u8>], bytes: usize) -> Result<u64, String> {
        let m = self.mem(o, buffers, bytes, bytes as u64)?;
        Ok(m.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// A little-endian store of the low `bytes` bytes of `v`.
    fn store(&self, o: &Operand, buffers: &mut [Vec<u8>], bytes: usize, v: u64) -> Result<(), String> {
        let m = self.mem(o, buffers, bytes, bytes as u64)?;
        m.copy_from_slice(&v.to_le_bytes()[..bytes]);
        Ok(())
    }

    /// Runs until the thread finishes or waits on others (its `state` says which).
    fn run(&mut self, p: &Program, params: &[u64], buffers: &mut [Vec<u8>], shared: &mut [f32]) -> Result<(), String> {
        let mut pc = self.pc;
        let mut steps = 0u64;
        while pc < p.code.len() {
            steps += 1;
            if steps > 1 << 32 {
                return Err("a thread ran 2^32 instructions".into());
            }
            let ins = &p.code[pc];
            pc += 1;
            self.pc = pc;
            if let Some((g, want)) = ins.guard {
                if (self.regs[Kind::P as usize][g] != 0) != want {
                    continue;
                }
            }
            let a = &ins.args;
            let v = |i: usize| self.get(&a[i], params);
            let op = ins.op.as_str();
            let out: u64 = match op {
                "ret" => {
                    self.state = State::Done;
                    return Ok(());
                }
                "bar.sync" => {
                    self.state = State::Barrier;
                    return Ok(());
                }
                "shfl.sync.down.b32" => {
                    let Operand::Reg(kind @ (Kind::R | Kind::F), i) = a[0] else {
                        return Err("shfl into a non-32-bit register".into());
                    };
                    self.state = State::Shuffle { dst: (kind, i), value: v(1)?, offset: v(2)? };
                    return Ok(());
                }
                "ld.shared.f32" => fb(shared_at(self, &a[1], shared)?.to_owned()),
                "ld.const.u64" => const_at(self, &a[1], &p.constants)?,
                "st.shared.f32" => {
                    let x = f(v(1)?);
                    *shared_at(self, &a[0], shared)? = x;
                    continue;
                }
                "bra" => match a.first() {
                    Some(Operand::Label(l)) => {
                        pc = *l;
                        continue;
                    }
                    other => return Err(format!("bra to {other:?}")),
                },
                "ld.param.u64" | "mov.b32" | "mov.u32" | "mov.u64" | "mov.b64" | "mov.f32" | "cvta.to.global.u64" => {
                    v(1)?
                }
                "cvt.u64.u32" => v(1)? & 0xffff_ffff,
                "cvt.rn.f32.s32" => fb(v(1)? as u32 as i32 as f32),
                "cvt.rn.f32.u64" => fb(v(1)? as f32),
                "cvt.rn.f32.u32" => fb(v(1)? as u32 as f32),
                "cvt.rn.f32.s64" => fb(v(1)? as i64 as f32),
                "cvt.rn.f64.u64" => (v(1)? as f64).to_bits(),
                "cvt.rn.f32.f64" => fb(f64::from_bits(v(1)?) as f32),
                "mul.rn.f64" => (f64::from_bits(v(1)?) * f64::from_bits(v(2)?)).to_bits(),
                "fma.rn.f64" => f64::from_bits(v(1)?).mul_add(f64::from_bits(v(2)?), f64::from_bits(v(3)?)).to_bits(),
                "add.rn.f64" => (f64::from_bits(v(1)?) + f64::from_bits(v(2)?)).to_bits(),
                "sub.rn.f64" => (f64::from_bits(v(1)?) - f64::from_bits(v(2)?)).to_bits(),
                "div.rn.f64" => (f64::from_bits(v(1)?) / f64::from_bits(v(2)?)).to_bits(),
                "sqrt.rn.f64" => f64::from_bits(v(1)?).sqrt().to_bits(),
                "cvt.f64.f32" => f64::from(f(v(1)?)).to_bits(),
                "cvt.rn.f64.s64" => (v(1)? as i64 as f64).to_bits(),
                "cvt.rn.f64.s32" => f64::from(v(1)? as u32 as i32).to_bits(),
                "cvt.rn.f64.u32" => f64::from(v(1)? as u32).to_bits(),
                "cvt.rzi.s32.f64" => u64::from(f64::from_bits(v(1)?) as i32 as u32),
                "cvt.rzi.s64.f64" => f64::from_bits(v(1)?) as i64 as u64,
                "cvt.rmi.f64.f64" => f64::from_bits(v(1)?).floor().to_bits(),
                "cvt.rpi.f64.f64" => f64::from_bits(v(1)?).ceil().to_bits(),
                "and.b64" => v(1)? & v(2)?,
                "or.b64" => v(1)? | v(2)?,
                // Shift counts past the width are clamped to it, as in PTX.
                "shr.s64" => ((v(1)? as i64) >> v(2)?.min(63)) as u64,
                "xor.b64" => v(1)? ^ v(2)?,
                // Float to integer: toward zero, saturating, NaN to 0 (as Rust's `as`).
                "cvt.rzi.s32.f32" => u64::from(f(v(1)?) as i32 as u32),
                "cvt.rzi.s64.f32" => f(v(1)?) as i64 as u64,
                "cvt.rmi.f32.f32" => fb(f(v(1)?).floor()),
                "cvt.rpi.f32.f32" => fb(f(v(1)?).ceil()),
                "cvt.s64.s32" => v(1)? as u32 as i32 as i64 as u64,
                "cvt.u32.u64" => v(1)? & 0xffff_ffff,
                "add.rn.f32" => fb(f(v(1)?) + f(v(2)?)),
                "sub.rn.f32" => fb(f(v(1)?) - f(v(2)?)),
                "mul.rn.f32" => fb(f(v(1)?) * f(v(2)?)),
                "fma.rn.f32" => fb(f(v(1)?).mul_add(f(v(2)?), f(v(3)?))),
                "div.rn.f32" => fb(f(v(1)?) / f(v(2)?)),
                "neg.f32" => fb(-f(v(1)?)),
                // The hardware's estimate is within 1 ulp; the interpreter's is the
                // nearest float (`ptx::division` says why kernels give div.rn's bits).
                "rcp.approx.ftz.f32" => fb(1.0 / f(v(1)?)),
                "sqrt.rn.f32" => fb(f(v(1)?).sqrt()),
                "add.s64" => v(1)?.wrapping_add(v(2)?),
                "sub.s64" => v(1)?.wrapping_sub(v(2)?),
                "neg.s64" => v(1)?.wrapping_neg(),
                "mul.lo.u64" => v(1)?.wrapping_mul(v(2)?),
                "mad.lo.u64" => v(1)?.wrapping_mul(v(2)?).wrapping_add(v(3)?),
                "div.u64" => v(1)?.checked_div(v(2)?).ok_or("div.u64 by zero")?,
                "rem.u64" => v(1)?.checked_rem(v(2)?).ok_or("rem.u64 by zero")?,
                "shl.b64" => v(1)?.checked_shl(shift_count(v(2)?)).unwrap_or(0),
                "shr.u64" => v(1)?.checked_shr(shift_count(v(2)?)).unwrap_or(0),
                "mul.hi.u64" => ((u128::from(v(1)?) * u128::from(v(2)?)) >> 64) as u64,
                "clz.b64" => u64::from(v(1)?.leading_zeros()),
                "mul.wide.u32" => (v(1)? & 0xffff_ffff) * (v(2)? & 0xffff_ffff),
                "add.s32" => (v(1)? as u32).wrapping_add(v(2)? as u32) as u64,
                "sub.s32" => (v(1)? as u32).wrapping_sub(v(2)? as u32) as u64,
                "mul.lo.s32" => (v(1)? as u32).wrapping_mul(v(2)? as u32) as u64,
                "mul.lo.s64" => v(1)?.wrapping_mul(v(2)?),
                "div.s32" => {
                    (v(1)? as u32 as i32).checked_div(v(2)? as u32 as i32).ok_or("div.s32 undefined")? as u32 as u64
                }
                "rem.s32" => {
                    (v(1)? as u32 as i32).checked_rem(v(2)? as u32 as i32).ok_or("rem.s32 undefined")? as u32 as u64
                }
                "div.s64" => (v(1)? as i64).checked_div(v(2)? as i64).ok_or("div.s64 undefined")? as u64,
                "rem.s64" => (v(1)? as i64).checked_rem(v(2)? as i64).ok_or("rem.s64 undefined")? as u64,
                "xor.pred" => u64::from((v(1)? != 0) != (v(2)? != 0)),
                "max.s32" => (v(1)? as u32 as i32).max(v(2)? as u32 as i32) as u32 as u64,
                "min.s32" => (v(1)? as u32 as i32).min(v(2)? as u32 as i32) as u32 as u64,
                "max.s64" => (v(1)? as i64).max(v(2)? as i64) as u64,
                "min.s64" => (v(1)? as i64).min(v(2)? as i64) as u64,
                "shl.b32" => (v(1)? as u32).checked_shl(shift_count(v(2)?)).unwrap_or(0) as u64,
                "shr.u32" => (v(1)? as u32).checked_shr(shift_count(v(2)?)).unwrap_or(0) as u64,
                "shr.s32" => ((v(1)? as u32 as i32) >> shift_count(v(2)?).min(31)) as u32 as u64,
                "and.b32" => (v(1)? & v(2)?) & 0xffff_ffff,
                "or.b32" => (v(1)? | v(2)?) & 0xffff_ffff,
                "xor.b32" => (v(1)? ^ v(2)?) & 0xffff_ffff,
                "and.pred" => u64::from(v(1)? != 0 && v(2)? != 0),
                "or.pred" => u64::from(v(1)? != 0 || v(2)? != 0),
                "selp.f32" | "selp.b32" | "selp.u32" | "selp.b64" => {
                    if v(3)? != 0 {
                        v(1)?
                    } else {
                        v(2)?
                    }
                }
                "ld.global.nc.v4.f32" => {
                    let Operand::Vec4(rs) = &a[0] else { return Err("ld.v4 into a non-vector".into()) };
                    let m = self.mem(&a[1], buffers, 16, 16)?;
                    let vals: Vec<u64> =
                        m.chunks_exact(4).map(|w| u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]]))).collect();
                    for (r, x) in rs.iter().zip(vals) {
                        self.regs[Kind::F as usize][*r] = x;
                    }
                    continue;
                }
                "st.global.v4.f32" => {
                    let Operand::Vec4(rs) = &a[1] else { return Err("st.v4 from a non-vector".into()) };
                    let vals: Vec<u8> =
                        rs.iter().flat_map(|r| (self.regs[Kind::F as usize][*r] as u32).to_le_bytes()).collect();
                    self.mem(&a[0], buffers, 16, 16)?.copy_from_slice(&vals);
                    continue;
                }
                _ if op.starts_with("ld.global.") => {
                    let bytes = width(op)?;
                    self.load(&a[1], buffers, bytes)?
                }
                _ if op.starts_with("st.global.") => {
                    let bytes = width(op)?;
                    let x = v(1)?;
                    self.store(&a[0], buffers, bytes, x)?;
                    continue;
                }
                _ if op.starts_with("setp.") => u64::from(compare(op, v(1)?, v(2)?)?),
                _ => return Err(format!("an instruction this emulator does not know: {op}")),
            };
            self.set(&a[0], out)?;
        }
        Err("a thread ran off the end without ret".into())
    }
}

/// The shared-memory element at address operand `o`.
fn shared_at<'a>(t: &Thread, o: &Operand, shared: &'a mut [f32]) -> Result<&'a mut f32, String> {
    let Operand::Addr(base) = o else { return Err(format!("{o:?} is not an address")) };
    let Operand::Reg(k, i) = **base else { return Err(format!("a shared address in {base:?}")) };
    let addr = t.regs[k as usize][i];
    let len = shared.len();
    shared
        .get_mut((addr / 4) as usize)
        .filter(|_| addr.is_multiple_of(4))
        .ok_or_else(|| format!("shared address {addr} of {len} floats"))
}

/// A shift's count operand: an unsigned 32-bit value.
fn shift_count(v: u64) -> u32 {
    v as u32
}

/// The constant-space word at address operand `o` (8-byte aligned).
fn const_at(t: &Thread, o: &Operand, constants: &[u64]) -> Result<u64, String> {
    let Operand::Addr(base) = o else { return Err(format!("{o:?} is not an address")) };
    let Operand::Reg(k, i) = **base else { return Err(format!("a constant address in {base:?}")) };
    let addr = t.regs[k as usize][i];
    let len = constants.len();
    constants
        .get((addr / 8) as usize)
        .filter(|_| addr.is_multiple_of(8))
        .copied()
        .ok_or_else(|| format!("constant address {addr} of {len} words"))
}

/// The bytes a `ld.global…`/`st.global…` moves, from its type suffix.
fn width(op: &str) -> Result<usize, String> {
    match op.rsplit('.').next() {
        Some("u8" | "s8") => Ok(1),
        Some("f32" | "b32" | "u32" | "s32") => Ok(4),
        Some("f64" | "b64" | "u64" | "s64") => Ok(8),
        _ => Err(format!("a memory access this emulator does not know: {op}")),
    }
}

/// `setp.<cmp>.<type>`: float comparisons are ordered (false with a NaN) except `neu`
/// and `nan`, as in PTX.
fn compare(op: &str, x: u64, y: u64) -> Result<bool, String> {
    let mut parts = op.split('.').skip(1);
    let (Some(cmp), Some(ty)) = (parts.next(), parts.next()) else { return Err(format!("setp form {op}")) };
    use std::cmp::Ordering::{self, *};
    let ord: Option<Ordering> = match ty {
        "f32" => f(x).partial_cmp(&f(y)),
        "f64" => f64::from_bits(x).partial_cmp(&f64::from_bits(y)),
        "u64" => Some(x.cmp(&y)),
        "u32" => Some((x as u32).cmp(&(y as u32))),
        "s32" => Some((x as u32 as i32).cmp(&(y as u32 as i32))),
        "s64" => Some((x as i64).cmp(&(y as i64))),
        _ => return Err(format!("setp type {ty}")),
    };
    Ok(match (cmp, ord) {
        ("nan", o) => o.is_none(),
        ("num", o) => o.is_some(),
        ("neu", o) => o != Some(Equal),
        (_, None) => false,
        ("eq", Some(o)) => o == Equal,
        ("ne", Some(o)) => o != Equal,
        ("lt", Some(o)) => o == Less,
        ("le", Some(o)) => o != Greater,
        ("gt", Some(o)) => o == Greater,
        ("ge", Some(o)) => o != Less,
        _ => return Err(format!("setp comparison {cmp}")),
    })
}
