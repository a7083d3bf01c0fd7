//! How a new prompt is rebuilt from the tokens already in the KV cache.
//!
//! The longest common prefix is kept as it is (exact). After it, a prompt often holds long runs
//! that the cache also holds, only at other positions: the window above the cursor loses its
//! first lines when it steps down, code from other files changes order, the lines below the
//! cursor move down by the line just typed. [`plan`] finds such runs (at least `min_run` tokens,
//! before a given position) and says to *move* their cached keys and values instead of running
//! the model over them again; the engine turns the moved keys by the distance moved (RoPE is a
//! rotation by position, so a rotation by the difference puts them at their new place) and runs
//! the model only over the rest.
//!
//! A moved run is not what a cold prefill computes: its keys and values were computed after the
//! old neighbours, not the new ones (llama.cpp's `--cache-reuse` makes the same trade). The
//! engine moves only what lies before `<|fim_suffix|>`: with the suffix moved too, the real
//! model repeated the line just written (its suffix had been read before that line existed).

use std::collections::HashMap;

/// Tokens hashed together to find candidate runs.
const KEY: usize = 4;
/// Candidate positions tried for one key (the latest ones).
const MAX_CANDIDATES: usize = 8;

/// One step of rebuilding the prompt after the kept prefix, in prompt order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Run the model over prompt positions `start..end`.
    Run { start: usize, end: usize },
    /// Put the cached positions `from..from + len` at prompt positions `to..to + len`.
    Move { from: usize, to: usize, len: usize },
}

/// The steps that turn `cached` (the tokens in the KV cache) into `prompt`, given that the
/// first `keep` tokens are shared (`keep < prompt.len()`). Runs of at least `min_run` tokens
/// found in `cached[keep..]` and lying before prompt position `movable` are moved
/// (`min_run == 0` moves nothing); the last prompt token is always run, so the last step is a
/// [`Step::Run`] that yields the next-token logits.
pub fn plan(cached: &[u32], prompt: &[u32], keep: usize, min_run: usize, movable: usize) -> Vec<Step> {
    let end = prompt.len();
    debug_assert!(keep < end);
    let mut steps = Vec::new();
    let mut run_from = keep;
    let movable = movable.min(end.saturating_sub(1)); // the last token is always run
    if min_run >= KEY && cached.len() > keep {
        let mut index: HashMap<&[u32], Vec<usize>> = HashMap::new();
        for from in keep..cached.len().saturating_sub(KEY - 1) {
            index.entry(&cached[from..from + KEY]).or_default().push(from);
        }
        let mut at = keep;
        while at + min_run <= movable {
            let best = index.get(&prompt[at..at + KEY]).and_then(|froms| {
                froms
                    .iter()
                    .rev()
                    .take(MAX_CANDIDATES)
                    .map(|&from| (from, matching(&cached[from..], &prompt[at..movable])))
                    .max_by_key(|&(from, len)| (len, from))
            });
            match best {
                Some((from, len)) if len >= min_run => {
                    if run_from < at {
                        steps.push(Step::Run { start: run_from, end: at });
                    }
                    steps.push(Step::Move { from, to: at, len });
                    at += len;
                    run_from = at;
                }
                _ => at += 1,
            }
        }
    }
    steps.push(Step::Run { start: run_from, end });
    steps
}

/// Length of the common prefix of `a` and `b`.
fn matching(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Prompt positions a plan takes from the cache by moving them.
pub fn moved(steps: &[Step]) -> usize {
    steps.iter().map(|s| if let Step::Move { len, .. } = s { *len } else { 0 }).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Rebuilds the prompt from the plan, the cache and the run positions, checking that the
    /// steps are in order and cover every position once.
    fn rebuild(cached: &[u32], prompt: &[u32], keep: usize, steps: &[Step]) -> Vec<u32> {
        let mut out = prompt[..keep].to_vec();
        for step in steps {
            match *step {
                Step::Run { start, end } => {
                    assert_eq!(start, out.len());
                    assert!(start < end);
                    out.extend_from_slice(&prompt[start..end]);
                }
                Step::Move { from, to, len } => {
                    assert_eq!(to, out.len());
                    assert!(from >= keep, "moved from the kept prefix");
                    out.extend_from_slice(&cached[from..from + len]);
                }
            }
        }
        out
    }

    #[test]
    fn a_run_found_at_another_position_is_moved() {
        // Old: prefix | <suf> suffix... | <mid> head.  New: prefix + typed line | <suf> suffix... | <mid>.
        let prefix: Vec<u32> = (0..50).collect();
        let suffix: Vec<u32> = (1000..1100).collect();
        let cached = [prefix.clone(), vec![7], suffix.clone(), vec![8, 500, 501]].concat();
        let prompt = [prefix.clone(), vec![500, 501, 502], vec![7], suffix.clone(), vec![8]].concat();
        let steps = plan(&cached, &prompt, 50, 32, prompt.len());
        assert_eq!(
            steps,
            vec![Step::Run { start: 50, end: 53 }, Step::Move { from: 50, to: 53, len: 101 }, Step::Run { start: 154, end: 155 },]
        );
        assert_eq!(moved(&steps), 101);
        assert_eq!(rebuild(&cached, &prompt, 50, &steps), prompt);
    }

    #[test]
    fn short_runs_and_the_last_token_are_run() {
        let cached: Vec<u32> = (0..40).collect();
        let prompt: Vec<u32> = [vec![0], (10..30).collect::<Vec<_>>()].concat();
        // A 20-token run is below min_run 32: everything is run.
        assert_eq!(plan(&cached, &prompt, 1, 32, 21), vec![Step::Run { start: 1, end: 21 }]);
        // With min_run 8 it moves, but never the last token.
        assert_eq!(plan(&cached, &prompt, 1, 8, 21), vec![Step::Move { from: 10, to: 1, len: 19 }, Step::Run { start: 20, end: 21 }]);
        // Only what lies before position 12 may move.
        assert_eq!(plan(&cached, &prompt, 1, 8, 12), vec![Step::Move { from: 10, to: 1, len: 11 }, Step::Run { start: 12, end: 21 }]);
        // Off.
        assert_eq!(plan(&cached, &prompt, 1, 0, 21), vec![Step::Run { start: 1, end: 21 }]);
    }

    proptest! {
        #[test]
        fn a_plan_rebuilds_the_prompt_exactly(
            cached in proptest::collection::vec(0u32..6, 0..120),
            prompt in proptest::collection::vec(0u32..6, 1..120),
            keep_seed in 0usize..1000,
            min_run in 0usize..12,
        ) {
            let common = matching(&cached, &prompt).min(prompt.len() - 1);
            let keep = keep_seed % (common + 1);
            let steps = plan(&cached, &prompt, keep, min_run, prompt.len());
            let ends_with_a_run = matches!(steps.last(), Some(Step::Run { end, .. }) if *end == prompt.len());
            prop_assert!(ends_with_a_run, "{:?}", steps);
            for s in &steps {
                if let Step::Move { len, .. } = s {
                    prop_assert!(*len >= min_run.max(KEY));
                }
            }
            prop_assert_eq!(rebuild(&cached, &prompt, keep, &steps), prompt);
        }
    }
}
