use tensorjit::prelude::*;
fn main() {
    let x = random::uniform([4], -2.0, 2.0, DType::F32, Some(1));
    let f = function("w1", |(x,): (Tensor,)| &x * 2.0 + 1.0);
    let mut s = 0.0f32;
    for _ in 0..200_000 {
        let y = f.call((x.clone(),));
        s += y.as_slice::<f32>().map(|v| v[0]).unwrap_or(0.0);
    }
    println!("{s}");
}
