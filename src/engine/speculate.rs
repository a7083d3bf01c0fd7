//! Prompt-lookup drafting: code repeats itself, so the tokens that followed the last few tokens
//! the last time they appeared are a good guess for what comes next. The engine verifies a
//! draft in one batched forward pass and keeps the longest prefix that greedy decoding would
//! have produced anyway, so the output is identical to plain greedy decoding.

/// Longest n-gram tried first; shorter ones are tried when it does not occur.
const MAX_NGRAM: usize = 4;
const MIN_NGRAM: usize = 2;

/// Up to `max_draft` tokens that followed the most recent earlier occurrence of the last
/// n-gram of `history` (n from 4 down to 2). Empty when there is no match.
pub fn draft(history: &[u32], max_draft: usize) -> Vec<u32> {
    if max_draft == 0 {
        return Vec::new();
    }
    for n in (MIN_NGRAM..=MAX_NGRAM).rev() {
        if history.len() <= n {
            continue;
        }
        let tail = &history[history.len() - n..];
        // Search backwards, skipping the tail itself.
        let last_start = history.len() - n;
        for start in (0..last_start).rev() {
            if &history[start..start + n] == tail {
                let from = start + n;
                let to = (from + max_draft).min(history.len());
                if from < to {
                    return history[from..to].to_vec();
                }
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_what_followed_the_last_occurrence() {
        // "a b c d e ... a b c" → propose "d e"
        let h = [1, 2, 3, 4, 5, 9, 9, 1, 2, 3];
        assert_eq!(draft(&h, 2), vec![4, 5]);
        assert_eq!(draft(&h, 10), vec![4, 5, 9, 9, 1, 2, 3]);
    }

    #[test]
    fn prefers_the_most_recent_and_longest_match() {
        let h = [7, 8, 1, 7, 8, 2, 0, 7, 8];
        assert_eq!(draft(&h, 1), vec![2]);
        let h = [5, 7, 8, 3, 6, 7, 8, 4, 5, 7, 8];
        assert_eq!(draft(&h, 1), vec![3], "the 3-gram 5 7 8 beats the newer 2-gram 7 8");
    }

    #[test]
    fn no_match_no_draft() {
        assert!(draft(&[1, 2, 3, 4], 4).is_empty());
        assert!(draft(&[], 4).is_empty());
        assert!(draft(&[1, 2, 1, 2], 0).is_empty());
    }
}
