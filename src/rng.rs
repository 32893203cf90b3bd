//! The one seeded random number generator: xorshift64 (Marsaglia's 13/7/17 triple). Calibration choices,
//! seeded random weights and bootstrap resampling all draw from it, so a seed means the same everywhere.

#[derive(Debug, Clone)]
pub struct XorShift64(u64);

impl XorShift64 {
    pub fn new(seed: u64) -> Self {
        XorShift64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut s = self.0;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        self.0 = s;
        s
    }

    /// Uniform in (0, 1): 53 random bits, never 0 or 1.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// An index below `n` (`n` > 0), by modulo (the bias is below 2⁻⁴⁰ for the sizes used here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_is_marsaglias_xorshift64() {
        // seed 0 → state 1: 1 ^ 1<<13 = 8193; ^ >>7 = 8193 ^ 64 = 8257; ^ <<17 = 8257 ^ 1082261504.
        let mut r = XorShift64::new(0);
        assert_eq!(r.next_u64(), 8257 ^ (8257 << 17));
        let u = XorShift64::new(3).uniform();
        assert!(u > 0.0 && u < 1.0);
    }
}
