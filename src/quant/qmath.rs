//! Quantize / dequantize arithmetic (ONNX QuantizeLinear semantics: q = saturate(round_half_even(x / s) + zp)).

/// Symmetric signed int8 with scale per output column of a [K, N] row-major weight: s_n = max|w_kn| / 127,
/// zero point 0. An all-zero column gets scale 1 (any scale reproduces it exactly).
pub fn quantize_per_column_i8(w: &[f32], k: usize, n: usize) -> (Vec<i8>, Vec<f32>) {
    debug_assert_eq!(w.len(), k * n);
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    let mut max = vec![0f32; n];
    for row in w.chunks_exact(n) {
        for (m, &v) in max.iter_mut().zip(row) {
            *m = m.max(v.abs());
        }
    }
    let scales: Vec<f32> = max
        .iter()
        .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 })
        .collect();
    let q = w
        .chunks_exact(n)
        .flat_map(|row| row.iter().zip(&scales).map(|(&v, &s)| quantize_i8(v, s, 0)))
        .collect();
    (q, scales)
}

/// Symmetric signed int8 with one scale per row of a [R, C] row-major table (embedding rows).
pub fn quantize_per_row_i8(w: &[f32], cols: usize) -> (Vec<i8>, Vec<f32>) {
    if cols == 0 {
        return (Vec::new(), Vec::new());
    }
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(w.len() / cols.max(1));
    for row in w.chunks_exact(cols) {
        let m = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if m > 0.0 { m / 127.0 } else { 1.0 };
        q.extend(row.iter().map(|&v| quantize_i8(v, s, 0)));
        scales.push(s);
    }
    (q, scales)
}

/// Block-wise unsigned 8-bit weights in `com.microsoft.MatMulNBits`' layout for a [K, N] row-major weight:
/// for each output column n and each run of `block` rows, s = max|w| / 127 and q = round(w / s) + 128
/// (the op's default zero point for 8 bits). Returns q as [N, K / block, block] and s as [N, K / block].
/// `block` must divide K. An all-zero block gets scale 1.
pub fn quantize_blocks_u8(w: &[f32], k: usize, n: usize, block: usize) -> (Vec<u8>, Vec<f32>) {
    debug_assert!(block > 0 && k.is_multiple_of(block) && w.len() == k * n);
    let blocks = k / block;
    let mut q = vec![0u8; n * k];
    let mut scales = vec![0f32; n * blocks];
    for col in 0..n {
        for b in 0..blocks {
            let rows = b * block..(b + 1) * block;
            let m = rows.clone().fold(0f32, |m, r| m.max(w[r * n + col].abs()));
            let s = if m > 0.0 { m / 127.0 } else { 1.0 };
            scales[col * blocks + b] = s;
            for r in rows {
                let v = (w[r * n + col] / s).round_ties_even() + 128.0;
                q[col * k + r] = v.clamp(0.0, 255.0) as u8;
            }
        }
    }
    (q, scales)
}

/// Block-wise unsigned 4-bit weights in `com.microsoft.MatMulNBits`' layout for a [K, N] row-major weight:
/// for each output column n and each run of `block` rows, s = max|w| / 7 and q = clamp(round(w / s), −8, 7) + 8
/// (the op's default zero point for 4 bits), two values a byte, the first in the low nibble. Returns q as
/// [N, K / block, block / 2] and s as [N, K / block]. `block` must be even and divide K. An all-zero block
/// gets scale 1.
pub fn quantize_blocks_u4(w: &[f32], k: usize, n: usize, block: usize) -> (Vec<u8>, Vec<f32>) {
    debug_assert!(block.is_multiple_of(2) && k.is_multiple_of(block) && w.len() == k * n);
    let blocks = k / block;
    let mut q = vec![0u8; n * k / 2];
    let mut scales = vec![0f32; n * blocks];
    for col in 0..n {
        for b in 0..blocks {
            let rows = b * block..(b + 1) * block;
            let m = rows.clone().fold(0f32, |m, r| m.max(w[r * n + col].abs()));
            let s = if m > 0.0 { m / 7.0 } else { 1.0 };
            scales[col * blocks + b] = s;
            for r in rows {
                let v = ((w[r * n + col] / s).round_ties_even().clamp(-8.0, 7.0) + 8.0) as u8;
                let byte = &mut q[(col * k + r) / 2];
                *byte |= if r % 2 == 0 { v } else { v << 4 };
            }
        }
    }
    (q, scales)
}

/// ONNX QuantizeLinear to int8: round half to even, then saturate.
pub fn quantize_i8(x: f32, scale: f32, zero_point: i8) -> i8 {
    let v = (x / scale).round_ties_even() + zero_point as f32;
    v.clamp(-128.0, 127.0) as i8
}

pub fn dequantize_i8(q: i8, scale: f32, zero_point: i8) -> f32 {
    (q as i32 - zero_point as i32) as f32 * scale
}

/// DynamicQuantizeLinear's parameters for a tensor (uint8, range always including 0):
/// scale = (max − min) / 255, zero point = saturate(round(−min / scale)).
pub fn dynamic_u8_params(x: &[f32]) -> (f32, u8) {
    let (lo, hi) = x
        .iter()
        .fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let scale = (hi - lo) / 255.0;
    if scale == 0.0 {
        return (0.0, 0);
    }
    let zp = (-lo / scale).round_ties_even().clamp(0.0, 255.0) as u8;
    (scale, zp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_quantization() {
        // scale 0.1: 0.25 → 2.5 → ties to even → 2; 0.35 → 3.5 → 4; −20 saturates at −128.
        assert_eq!(quantize_i8(0.25, 0.1, 0), 2);
        assert_eq!(quantize_i8(0.35, 0.1, 0), 4);
        assert_eq!(quantize_i8(-20.0, 0.1, 0), -128);
        assert_eq!(quantize_i8(1.0, 0.1, 5), 15);
        assert_eq!(dequantize_i8(15, 0.1, 5), 1.0);
        // DynamicQuantizeLinear on [-1, 0, 2]: scale 3/255, zero point round(1 / (3/255)) = round(85) = 85.
        let (s, zp) = dynamic_u8_params(&[-1.0, 0.0, 2.0]);
        assert!((s - 3.0 / 255.0).abs() < 1e-9);
        assert_eq!(zp, 85);
    }

    #[test]
    fn per_row_scales() {
        let (q, s) = quantize_per_row_i8(&[1.0, -0.5, 0.0, 0.0], 2);
        assert_eq!(s, vec![1.0 / 127.0, 1.0]);
        assert_eq!(q, vec![127, -64, 0, 0]); // -0.5 * 127 = -63.5 → -64 (ties to even)
    }

    #[test]
    fn per_column_scales_and_error_bound() {
        // K = 2, N = 3: columns (1, -2), (0.5, 0.25), (0, 0)
        let w = [1.0, 0.5, 0.0, -2.0, 0.25, 0.0];
        let (q, s) = quantize_per_column_i8(&w, 2, 3);
        assert_eq!(s, vec![2.0 / 127.0, 0.5 / 127.0, 1.0]);
        assert_eq!(q, vec![64, 127, 0, -127, 64, 0]); // 1/(2/127) = 63.5 → 64 (ties to even)
        for (i, &v) in w.iter().enumerate() {
            let back = dequantize_i8(q[i], s[i % 3], 0);
            assert!((back - v).abs() <= s[i % 3] / 2.0 + 1e-7, "{v} → {back}");
        }
    }

    #[test]
    fn blocks_are_per_column_runs_of_rows_in_the_ops_layout() {
        // K = 4, N = 2, blocks of 2 rows: column 0 = (1, -2, 0, 0), column 1 = (0.5, 0.25, 4, -4).
        let w = [1.0, 0.5, -2.0, 0.25, 0.0, 4.0, 0.0, -4.0];
        let (q, s) = quantize_blocks_u8(&w, 4, 2, 2);
        assert_eq!(s, vec![2.0 / 127.0, 1.0, 0.5 / 127.0, 4.0 / 127.0]);
        // Column-major by output: column 0's four rows, then column 1's.
        assert_eq!(q, vec![192, 1, 128, 128, 255, 192, 255, 1]);
        for col in 0..2 {
            for r in 0..4 {
                let scale = s[col * 2 + r / 2];
                let back = (q[col * 4 + r] as f32 - 128.0) * scale;
                assert!((back - w[r * 2 + col]).abs() <= scale / 2.0 + 1e-7);
            }
        }
    }
}
