//! Loading tests on the tiny model: the tokenizer, both file formats, and every error path.

use super::*;
use crate::engine::testing::{self, TinyOptions};

fn load(path: &Path) -> Result<(Qwen2, Tokenizer), LoadError> {
    Qwen2::load(path, &Device::Cpu, 256)
}

#[test]
fn tiny_model_loads_with_a_fim_tokenizer() {
    let (model, tokenizer) = load(&testing::tiny_model_path()).unwrap();
    let cfg = model.config();
    assert_eq!((cfg.num_layers, cfg.hidden_size, cfg.head_dim), (2, 64, 16));
    assert_eq!(cfg.vocab_size, testing::tiny_tokens().len());
    assert!(cfg.tie_word_embeddings);
    assert_eq!(model.max_ctx(), 256);
    assert_eq!(model.cached_len(), 0);

    let text = "def add(a, b):\n    return a + b";
    let ids = tokenizer.encode(text, false).unwrap().get_ids().to_vec();
    assert_eq!(tokenizer.decode(&ids, false).unwrap(), text);
    // The indentation goes through the "Ġ Ġ" merge.
    assert!(ids.contains(&tokenizer.token_to_id("ĠĠ").unwrap()), "{ids:?}");

    let prompt = "<|fim_prefix|>x = <|fim_suffix|>\n<|fim_middle|>";
    let ids = tokenizer.encode(prompt, false).unwrap().get_ids().to_vec();
    for marker in ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"] {
        assert!(ids.contains(&tokenizer.token_to_id(marker).unwrap()), "{marker} in {ids:?}");
    }
    assert_eq!(tokenizer.decode(&ids, false).unwrap(), prompt);
}

#[test]
fn max_ctx_is_clamped_to_the_trained_context() {
    let (model, _) = Qwen2::load(&testing::tiny_model_path(), &Device::Cpu, 1 << 20).unwrap();
    assert_eq!(model.max_ctx(), model.config().max_position_embeddings);
}

#[test]
fn truncated_gguf_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = testing::write_tiny_model(dir.path(), 7).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    // Cut at several places: inside the metadata, inside the tensor infos, inside the data.
    for fraction in [0.5, 0.1, 0.02, 0.9] {
        let cut = dir.path().join("cut.gguf");
        std::fs::write(&cut, &bytes[..(bytes.len() as f64 * fraction) as usize]).unwrap();
        match load(&cut) {
            Err(LoadError::Corrupt { .. }) => {}
            other => panic!("cut at {fraction}: expected Corrupt, got {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn missing_path_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&dir.path().join("nope.gguf")).unwrap_err();
    assert!(matches!(err, LoadError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("download"), "{err}");
}

#[test]
fn text_file_and_empty_folder_are_not_models() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "just some text, definitely not a model\n").unwrap();
    assert!(matches!(load(&text), Err(LoadError::NotAModel { .. })));
    let short = dir.path().join("short");
    std::fs::write(&short, "GG").unwrap();
    assert!(matches!(load(&short), Err(LoadError::NotAModel { .. })));
    assert!(matches!(load(dir.path()), Err(LoadError::NotAModel { .. })));
}

#[test]
fn other_architectures_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = testing::write_tiny_model(dir.path(), 3).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    // Same length, so every offset stays valid.
    let at = bytes.windows(5).position(|w| w == b"qwen2").unwrap();
    bytes[at..at + 5].copy_from_slice(b"llama");
    std::fs::write(&path, &bytes).unwrap();
    match load(&path) {
        Err(LoadError::UnsupportedArchitecture { found, .. }) => assert_eq!(found, "llama"),
        other => panic!("expected UnsupportedArchitecture, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn tokenizer_without_fim_tokens_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = testing::write_tiny_model(dir.path(), 4).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let needle = b"<|fim_middle|>";
    let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap();
    bytes[at..at + needle.len()].copy_from_slice(b"<|fim_muddle|>");
    std::fs::write(&path, &bytes).unwrap();
    let err = load(&path).unwrap_err();
    assert!(matches!(err, LoadError::Tokenizer { .. }), "{err:?}");
    assert!(err.to_string().contains("FIM"), "{err}");
}

#[test]
fn hf_folder_matches_f32_gguf() {
    let dir = tempfile::tempdir().unwrap();
    for tied in [true, false] {
        let opts = TinyOptions { quantized: false, tied, ..TinyOptions::default() };
        let gguf = testing::write_tiny_gguf(dir.path(), 11, opts).unwrap();
        let hf = testing::write_tiny_hf(dir.path(), 11, tied).unwrap();
        let (mut a, tok_a) = load(&gguf).unwrap();
        let (mut b, tok_b) = load(&hf).unwrap();
        assert_eq!(a.config(), b.config());
        let text = "<|fim_prefix|>fn main() {\n    let x = <|fim_suffix|>;\n}<|fim_middle|>";
        let ids = tok_a.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(ids, tok_b.encode(text, false).unwrap().get_ids());
        let la = a.forward_all(&ids).unwrap();
        let lb = b.forward_all(&ids).unwrap();
        let diff = (la - lb).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-4, "tied={tied}: max diff {diff}");
    }
}

#[test]
fn hf_folder_without_tokenizer_is_a_tokenizer_error() {
    let dir = tempfile::tempdir().unwrap();
    let hf = testing::write_tiny_hf(dir.path(), 5, true).unwrap();
    std::fs::remove_file(hf.join("tokenizer.json")).unwrap();
    assert!(matches!(load(&hf), Err(LoadError::Tokenizer { .. })));
}
