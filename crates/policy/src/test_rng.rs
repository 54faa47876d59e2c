//! A deterministic pseudo-random generator for the property tests (xorshift64), so a failing
//! case reproduces from its seed.

/// Returns `next(bound)`: a number in `0..bound`, the same sequence for the same seed.
pub(crate) fn xorshift(seed: u64) -> impl FnMut(usize) -> usize {
    let mut state = seed;
    move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    }
}
