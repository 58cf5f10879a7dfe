package realollama

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The tiny model's shape: a Llama small enough to be made in a millisecond
// and run on one CPU thread, large enough that Ollama converts and runs it
// as it would a real one.
const (
	hiddenSize = 64
	layers     = 2
	heads      = 4
	ffnSize    = 128
	seed       = 24
)

// Special tokens, Llama 3's spelling.
const (
	bosToken = "<|begin_of_text|>"
	eosToken = "<|end_of_text|>"
)

// merges are the byte-level BPE merges of the vocabulary, in rank order,
// in GPT-2's byte-to-unicode spelling (Ġ is a space). Each side is a token
// made before it.
var merges = []string{
	"Ġ t", "Ġ a", "h e", "i n", "r e", "o n", "Ġt he", "e r", "Ġ s", "a t",
	"Ġ w", "Ġ o", "e n", "Ġ c", "i s", "i t", "o u", "Ġ b", "Ġ f", "Ġ p",
	"a n", "e s", "Ġ m", "o r", "Ġ h", "Ġ d", "l l", "Ġ l", "Ġ i", "in g",
	"Ġ y", "Ġy ou", "Ġh e", "ll o", "Ġhe llo", "a y", "Ġs ay", "e d", "Ġ n", "o w",
}

// modelFiles returns the files of the tiny model's safetensors directory,
// by name: what Hugging Face's transformers would save for a
// LlamaForCausalLM, which Ollama's create converts.
func modelFiles() (map[string][]byte, error) {
	vocab, err := vocabulary()
	if err != nil {
		return nil, err
	}
	bos, eos := len(vocab), len(vocab)+1
	size := len(vocab) + 2

	config := map[string]any{
		"architectures":           []string{"LlamaForCausalLM"},
		"model_type":              "llama",
		"hidden_size":             hiddenSize,
		"intermediate_size":       ffnSize,
		"num_hidden_layers":       layers,
		"num_attention_heads":     heads,
		"num_key_value_heads":     heads,
		"max_position_embeddings": 2048,
		"rms_norm_eps":            1e-5,
		"rope_theta":              10000.0,
		"vocab_size":              size,
		"bos_token_id":            bos,
		"eos_token_id":            eos,
		"tie_word_embeddings":     false,
		"torch_dtype":             "float32",
	}
	tokenizer := map[string]any{
		"version": "1.0",
		"added_tokens": []map[string]any{
			{"id": bos, "content": bosToken, "special": true},
			{"id": eos, "content": eosToken, "special": true},
		},
		"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": merges},
	}
	tokenizerConfig := map[string]any{
		"bos_token":     bosToken,
		"eos_token":     eosToken,
		"add_bos_token": true,
		"add_eos_token": false,
	}
	files := map[string][]byte{}
	for name, v := range map[string]any{"config.json": config, "tokenizer.json": tokenizer, "tokenizer_config.json": tokenizerConfig} {
		b, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	files["model.safetensors"] = weights(size, emittable(vocab, size))
	return files, nil
}

// WriteModel writes the tiny model's safetensors directory into dir (which
// must exist): config.json, tokenizer.json, tokenizer_config.json and
// model.safetensors, about 500 KB, the same bytes on every call.
func WriteModel(dir string) error {
	files, err := modelFiles()
	if err != nil {
		return err
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// byteToUnicode is GPT-2's byte-level alphabet: printable Latin-1 bytes
// stand for themselves, the others for code points from U+0100 up, so that
// every byte is one visible character of a token.
func byteToUnicode() [256]rune {
	var table [256]rune
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			table[b] = rune(b)
		} else {
			table[b] = rune(256 + n)
			n++
		}
	}
	return table
}

// vocabulary is the 256 byte tokens (id = byte value) followed by one token
// per merge.
func vocabulary() (map[string]int, error) {
	vocab := map[string]int{}
	for b, r := range byteToUnicode() {
		vocab[string(r)] = b
	}
	for _, m := range merges {
		left, right, ok := strings.Cut(m, " ")
		_, okL := vocab[left]
		_, okR := vocab[right]
		if !ok || !okL || !okR {
			return nil, fmt.Errorf("realollama: merge %q joins a token not made before it", m)
		}
		if _, dup := vocab[left+right]; !dup {
			vocab[left+right] = len(vocab)
		}
	}
	return vocab, nil
}

// emittable marks the tokens the model may answer with: printable ASCII
// bytes and the merges. The others (control bytes, bytes of multi-byte
// UTF-8 sequences, BOS and EOS) get an output row of zeros, a logit of 0;
// of the ~150 emittable tokens' random logits, far more than top_k's 40 are
// above 0, so the others are never sampled. The stream is plain text, one
// chunk a token, and does not end early with EOS: it runs to num_predict.
func emittable(vocab map[string]int, size int) []bool {
	ok := make([]bool, size)
	for _, id := range vocab {
		ok[id] = id >= 256 || (id >= ' ' && id <= '~')
	}
	return ok
}

// weights is model.safetensors: random float32 weights from a fixed seed,
// norms of ones.
func weights(vocabSize int, emit []bool) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	type tensor struct {
		shape []int
		data  []float32
	}
	tensors := map[string]tensor{}
	normal := func(std float64, shape ...int) tensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		t := tensor{shape: shape, data: make([]float32, n)}
		for i := range t.data {
			t.data[i] = float32(rng.NormFloat64() * std)
		}
		return t
	}
	ones := func(n int) tensor {
		t := tensor{shape: []int{n}, data: make([]float32, n)}
		for i := range t.data {
			t.data[i] = 1
		}
		return t
	}
	tensors["model.embed_tokens.weight"] = normal(1, vocabSize, hiddenSize)
	for l := 0; l < layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		tensors[p+"input_layernorm.weight"] = ones(hiddenSize)
		tensors[p+"post_attention_layernorm.weight"] = ones(hiddenSize)
		for _, proj := range []string{"q_proj", "k_proj", "v_proj", "o_proj"} {
			tensors[p+"self_attn."+proj+".weight"] = normal(0.1, hiddenSize, hiddenSize)
		}
		tensors[p+"mlp.gate_proj.weight"] = normal(0.1, ffnSize, hiddenSize)
		tensors[p+"mlp.up_proj.weight"] = normal(0.1, ffnSize, hiddenSize)
		tensors[p+"mlp.down_proj.weight"] = normal(0.1, hiddenSize, ffnSize)
	}
	tensors["model.norm.weight"] = ones(hiddenSize)
	// Small output weights make nearly flat logits: sampled (see
	// modelfile), the answer wanders over the vocabulary instead of
	// settling into one repeated token, which Ollama cuts off.
	head := normal(0.05, vocabSize, hiddenSize)
	for id, ok := range emit {
		if !ok {
			clear(head.data[id*hiddenSize : (id+1)*hiddenSize])
		}
	}
	tensors["lm_head.weight"] = head

	// The safetensors layout: an 8-byte little-endian header length, a
	// JSON header naming each tensor's dtype, shape and byte range, then
	// the data.
	names := make([]string, 0, len(tensors))
	for name := range tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	offset := 0
	for _, name := range names {
		t := tensors[name]
		header[name] = map[string]any{"dtype": "F32", "shape": t.shape, "data_offsets": []int{offset, offset + 4*len(t.data)}}
		offset += 4 * len(t.data)
	}
	h, _ := json.Marshal(header)
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := make([]byte, 8, 8+len(h)+offset)
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	out = append(out, h...)
	for _, name := range names {
		for _, f := range tensors[name].data {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
		}
	}
	return out
}
