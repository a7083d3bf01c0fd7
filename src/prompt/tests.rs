//! Prompt layout tests on the tiny test model's tokenizer.

use super::*;
use crate::engine::model::Qwen2;
use crate::engine::testing::tiny_model_path;

fn tiny_tokenizer() -> Tokenizer {
    Qwen2::load(&tiny_model_path(), &candle_core::Device::Cpu, 64).expect("tiny model").1
}

fn text() -> PromptText {
    PromptText {
        prefix: "def add(a, b):\n".into(),
        suffix: "\n\nprint(add(1, 2))\n".into(),
        line_head: "    return ".into(),
        ..PromptText::default()
    }
}

const WIDE: Budget = Budget { max_prefix_tokens: 10_000, max_suffix_tokens: 10_000, max_context_tokens: 10_000 };

#[test]
fn layout_is_prefix_suffix_middle_with_the_line_head_last() {
    let tok = tiny_tokenizer();
    let special = SpecialTokens::from_tokenizer(&tok).unwrap();
    let decoded = render(&tok, &special, &text(), WIDE).unwrap();
    let p = build(&tok, &special, &text(), WIDE).unwrap();
    expect_test::expect![[r#"
        <|fim_prefix|>def add(a, b):
        <|fim_suffix|>

        print(add(1, 2))
        <|fim_middle|>    return "#]]
    .assert_eq(&decoded);
    assert_eq!(p.context_len, 0);
}

#[test]
fn typing_on_the_cursor_line_only_appends() {
    let tok = tiny_tokenizer();
    let special = SpecialTokens::from_tokenizer(&tok).unwrap();
    let before = build(&tok, &special, &text(), WIDE).unwrap();
    let mut typed = text();
    typed.line_head.push_str("a + b");
    let after = build(&tok, &special, &typed, WIDE).unwrap();
    let common = before.tokens.iter().zip(&after.tokens).take_while(|(a, b)| a == b).count();
    // Everything up to the middle marker survives; at most the last token of the line head changes.
    let middle_at = before.tokens.iter().position(|t| *t == special.fim_middle).unwrap();
    assert!(common > middle_at, "common {common}, middle at {middle_at}");
    assert!(before.tokens.len() - common <= 1);
}

#[test]
fn the_last_token_of_the_line_head_is_left_to_the_model() {
    let tok = tiny_tokenizer();
    let special = SpecialTokens::from_tokenizer(&tok).unwrap();
    let p = build(&tok, &special, &text(), WIDE).unwrap();
    assert!(!p.heal.is_empty() && "    return ".ends_with(&p.heal), "{:?}", p.heal);
    let shown = tok.decode(&p.tokens, false).unwrap();
    assert_eq!(format!("{shown}{}", p.heal), render(&tok, &special, &text(), WIDE).unwrap());
    // An empty line head heals nothing.
    let mut t = text();
    t.line_head.clear();
    assert_eq!(build(&tok, &special, &t, WIDE).unwrap().heal, "");
}

#[test]
fn indentation_is_cut_as_when_code_follows_it() {
    let tok = tiny_tokenizer();
    let special = SpecialTokens::from_tokenizer(&tok).unwrap();
    let ids = |s: &str| tok.encode_fast(s, false).unwrap().get_ids().to_vec();
    let mut t = text();
    t.line_head = "        ".into();
    let p = build(&tok, &special, &t, WIDE).unwrap();
    // With code after them, the spaces are cut differently (the last one is glued to the
    // word): the prompt ends with the tokens wholly inside the indentation, and the model spells
    // the rest, starting with its first token.
    let with_code = ids("        if");
    let mut inside = with_code.iter().take_while(|&&id| tok.decode(&[id], false).unwrap().trim().is_empty()).count();
    if tok.decode(&with_code[..inside], false).unwrap() == "        " {
        inside -= 1; // the word is a token of its own: the last space token is left to the model
    }
    let middle = p.tokens.iter().rposition(|&id| id == special.fim_middle).unwrap();
    assert_eq!(p.tokens[middle + 1..], with_code[..inside]);
    assert_eq!(p.heal, tok.decode(&with_code[inside..], false).unwrap().strip_suffix("if").unwrap());
    assert_ne!(ids("        ")[..], with_code[..inside], "the test needs a tokenizer that cuts spaces by what follows");
    assert_eq!(format!("{}{}", tok.decode(&p.tokens, false).unwrap(), p.heal), render(&tok, &special, &t, WIDE).unwrap());
    // Whatever the line head, shown tokens + healed text spell it.
    for head in ["    x = fo", "foo(", "\t\t", " ", "    return ", "é😀 ab", "x  "] {
        t.line_head = head.into();
        let p = build(&tok, &special, &t, WIDE).unwrap();
        let middle = p.tokens.iter().rposition(|&id| id == special.fim_middle).unwrap();
        let shown = tok.decode(&p.tokens[middle + 1..], false).unwrap();
        assert_eq!(format!("{shown}{}", p.heal), head, "{head:?}");
        assert!(!p.heal.is_empty(), "{head:?}");
    }
}

#[test]
fn budgets_drop_whole_lines_from_the_far_ends() {
    let tok = tiny_tokenizer();
    let special = SpecialTokens::from_tokenizer(&tok).unwrap();
    let mut t = text();
    t.prefix = (0..200).map(|i| format!("x{i} = {i}\n")).collect();
    t.suffix = (0..200).map(|i| format!("\ny{i} = {i}")).collect();
    let budget = Budget { max_prefix_tokens: 50, max_suffix_tokens: 40, max_context_tokens: 0 };
    let p = build(&tok, &special, &t, budget).unwrap();
    let decoded = tok.decode(&p.tokens, false).unwrap();
    let prefix = decoded.split("<|fim_suffix|>").next().unwrap().trim_start_matches("<|fim_prefix|>");
    assert!(prefix.starts_with('x') && prefix.ends_with("x199 = 199\n"), "{prefix}");
    let suffix = decoded.split("<|fim_suffix|>").nth(1).unwrap().split("<|fim_middle|>").next().unwrap();
    assert!(suffix.starts_with("\ny0 = 0"), "{suffix}");
    let pre_ids = p.tokens.iter().position(|t| *t == special.fim_suffix).unwrap() - 1;
    assert!(pre_ids <= 50);
}

#[test]
fn repo_context_comes_first_in_qwen_format() {
    let tok = tiny_tokenizer();
    let special = SpecialTokens::from_tokenizer(&tok).unwrap();
    let mut t = text();
    t.layout = ChunkLayout::RepoLevel { repo_name: Some("demo".into()), path: Some("app/main.py".into()) };
    t.chunks = vec![ContextChunk { path: "util.py".into(), text: "def sub(a, b):\n    return a - b\n".into() }];
    let p = build(&tok, &special, &t, WIDE).unwrap();
    let decoded = tok.decode(&p.tokens, false).unwrap();
    assert!(
        decoded.starts_with(
            "<|repo_name|>demo\n<|file_sep|>util.py\ndef sub(a, b):\n    return a - b\n<|file_sep|>app/main.py\n<|fim_prefix|>"
        ),
        "{decoded}"
    );
    assert_eq!(p.tokens[p.context_len], special.fim_prefix);
}

#[test]
fn other_files_as_comments_open_the_prefix() {
    let tok = tiny_tokenizer();
    let special = SpecialTokens::from_tokenizer(&tok).unwrap();
    let mut t = text();
    t.layout = ChunkLayout::Comments { marker: "#" };
    t.chunks = vec![
        ContextChunk { path: "util.py".into(), text: "def sub(a, b):\n\n    return a - b\n".into() },
        ContextChunk { path: "app/money.py".into(), text: "CENTS = 100\n".into() },
    ];
    let p = build(&tok, &special, &t, WIDE).unwrap();
    expect_test::expect![[r#"
        <|fim_prefix|># Path: util.py
        # def sub(a, b):
        #
        #     return a - b
        # Path: app/money.py
        # CENTS = 100
        def add(a, b):
        <|fim_suffix|>

        print(add(1, 2))
        <|fim_middle|>    return "#]]
    .assert_eq(&render(&tok, &special, &t, WIDE).unwrap());
    // The context ends where this file's prefix starts: typing never changes those tokens.
    let context = tok.decode(&p.tokens[..p.context_len], false).unwrap();
    assert!(context.ends_with("# CENTS = 100\n"), "{context}");
    // A chunk that does not fit is left out whole; the next one may still fit.
    let one = tok.encode_fast("# Path: app/money.py\n# CENTS = 100\n", false).unwrap().get_ids().len();
    let small = Budget { max_context_tokens: one, ..WIDE };
    let decoded = render(&tok, &special, &t, small).unwrap();
    assert!(decoded.starts_with("<|fim_prefix|># Path: app/money.py\n# CENTS = 100\ndef add"), "{decoded}");
}

#[test]
fn missing_fim_tokens_are_a_clear_error() {
    let tok = tokenizers::Tokenizer::new(tokenizers::models::bpe::BPE::default());
    let err = SpecialTokens::from_tokenizer(&tok).unwrap_err();
    assert!(err.to_string().contains("<|fim_prefix|>"), "{err}");
}
