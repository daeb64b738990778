// Restricted unpickler for torch.save's data.pkl: turns the pickle into plain data values and executes nothing.
// Globals are matched against an allow-list: tensor rebuilds (_rebuild_tensor_v2, _rebuild_parameter), typed
// storages and OrderedDict get their meaning as data; plain classes (argparse.Namespace, numpy scalars, pathlib
// paths, ...) become opaque records whose arguments and state are kept but never instantiated; any other global
// (os.system, builtins.eval, subprocess.*, torch.load, ...) is refused with an error naming it. The machine is a
// loop over opcodes with an explicit stack (no recursion), every length is checked against the input, and the
// limits below bound memory and nesting. No torch dependency (the libFuzzer harness links it).
// Opcode facts: Python's Lib/pickletools.py; torch specifics: spec/torch-checkpoint.md.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "common/weights/safetensors_format.h"  // DType

namespace moh::pickle {

enum class Kind : uint8_t { None, Bool, Int, BigInt, Float, Str, Bytes, Tuple, List, Dict, Global, Record, Storage, Tensor };
const char* kind_name(Kind k);

struct Value {
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  // Str (UTF-8), Bytes, BigInt (little-endian two's complement), Global and Record ("module.name").
  std::string s;
  // Tuple/List items; Dict keys and values interleaved (k0, v0, k1, v1, ...; a later duplicate key wins);
  // Record: the constructor arguments.
  std::vector<const Value*> items;
  const Value* state = nullptr;  // Record (and Dict attributes): the BUILD state
  size_t index = 0;              // Storage: index into Pickle::storages; Tensor: index into Pickle::tensors
  uint32_t depth = 0;            // containers: 1 + deepest item at insertion time
};

// A storage named by a persistent id ('storage', <torch.XStorage>, key, location, numel).
struct StorageRef {
  std::string key;  // the zip entry is <prefix>/data/<key>
  DType dtype = DType::F32;
  uint64_t numel = 0;  // elements of dtype
  std::string location;
};

// _rebuild_tensor_v2(storage, offset, size, stride, ...): validated against the storage's numel when built.
struct TensorRef {
  size_t storage = 0;
  int64_t offset = 0;
  std::vector<int64_t> sizes, strides;
  bool requires_grad = false;
};

struct Limits {
  uint32_t max_depth = 200;          // nesting of containers (torch data nests < 10 deep)
  size_t max_stack = 1u << 24;       // values on the stack
  size_t max_memo = 1u << 24;        // memo entries
  size_t max_values = 1u << 22;      // values created in total (~100 bytes each)
  size_t max_dims = 64;              // tensor dimensions
};

struct Pickle {
  std::deque<Value> values;  // owns every value (stable addresses; shared references and cycles are harmless)
  std::vector<StorageRef> storages;
  std::vector<TensorRef> tensors;
  const Value* root = nullptr;
};

// Unpickles `size` bytes. `label` names the source in every error (moh::Error).
Pickle unpickle(const uint8_t* data, size_t size, const std::string& label, const Limits& limits = {});

// The value of dict `d` under string key `key` (the last one when repeated), or nullptr.
const Value* dict_get(const Value& d, const std::string& key);
// String keys of a dict in insertion order (first occurrence; non-string keys skipped).
std::vector<std::string> dict_keys(const Value& d);
// JSON text for a value (records as {"__class__": ..., fields...}); bounded: deeper than max_depth or longer than
// max_chars is cut with a marker, so cycles and huge data are harmless.
std::string to_json(const Value& v, int max_depth = 16, size_t max_chars = 1u << 16);

}  // namespace moh::pickle
