// Internal to the restricted unpickler (common/weights/torch_pickle.h), not part of the API: the machine's state
// and primitive steps (input, values, stack, memo), shared by the three files that make it up:
//   torch_pickle.cpp    the opcode loop: one case per opcode, over an explicit value stack;
//   pickle_globals.cpp  the allow-list: classification of globals, and what calling an allowed one yields
//                       (dicts, storages from persistent ids, validated tensor views, inert records);
//   pickle_values.cpp   reading the result: kind names, dict lookups, bounded JSON rendering.
// Opcode facts: Python's Lib/pickletools.py (pickle.py `_Unpickler`); torch specifics: spec/torch-checkpoint.md.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "common/weights/torch_pickle.h"

namespace moh::pickle::detail {

// ------------------------------------------------------------------------------------------- the allow-list
enum class Role {
  Refused,
  Dict,              // collections.OrderedDict / defaultdict: called -> an empty dict
  RebuildTensorV2,   // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, meta])
  RebuildTensor,     // torch._utils._rebuild_tensor(storage, offset, size, stride)  (older writers)
  RebuildParameter,  // torch._utils._rebuild_parameter(tensor, requires_grad, hooks[, state])
  RebuildFromType,   // torch._tensor._rebuild_from_type_v2(func, type, args, state)
  TensorType,        // torch.Tensor, torch.nn.parameter.Parameter (arguments of _rebuild_from_type_v2)
  Storage,           // torch.FloatStorage, ... (inside persistent ids)
  Size,              // torch.Size(tuple) -> the tuple
  CodecsEncode,      // _codecs.encode(str, 'latin1') -> bytes (protocol 2 writes bytes this way)
  SetType,           // builtins.set / frozenset(list) -> list
  BytearrayType,     // builtins.bytearray(bytes) -> bytes
  Identity,          // torch.jit._pickle.restore_type_tag(obj, type) / build_intlist(list) (LibTorch's pickler) -> obj
  Record,            // plain data class or inert value: called -> an opaque record, never instantiated
};

struct GlobalInfo {
  Role role = Role::Refused;
  DType dtype = DType::U8;
};

// The allow-list (pickle_globals.cpp): what `module.name` may stand for; Role::Refused for everything else.
GlobalInfo classify_global(const std::string& module, const std::string& name);

// Whether s is well-formed UTF-8 (no overlongs, no surrogates).
bool valid_utf8(const std::string& s);

inline std::string shorten(const std::string& s, size_t n = 120) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

class Machine {
 public:
  Machine(const uint8_t* data, size_t size, const std::string& label, const Limits& limits)
      : p_(data), n_(size), label_(label), lim_(limits) {}

  Pickle run();  // the opcode loop (torch_pickle.cpp)

 private:
  // ---- errors and input
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("pickle in '" + label_ + "': " + what + " (at byte " + std::to_string(op_pos_) + ")");
  }
  const uint8_t* take(uint64_t k) {
    if (k > n_ - pos_) fail("an opcode's argument runs past the end of the data (truncated)");
    const uint8_t* q = p_ + pos_;
    pos_ += static_cast<size_t>(k);
    return q;
  }
  uint64_t le(int bytes) {
    const uint8_t* q = take(bytes);
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | q[i];
    return v;
  }
  std::string line() {
    const void* nl = std::memchr(p_ + pos_, '\n', n_ - pos_);
    if (!nl) fail("a text argument has no terminating newline (truncated)");
    const size_t len = static_cast<const uint8_t*>(nl) - (p_ + pos_);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len + 1;
    return s;
  }

  // ---- values
  Value* make(Kind k) {
    if (out_.values.size() >= lim_.max_values) fail("more than " + std::to_string(lim_.max_values) + " values");
    out_.values.emplace_back();
    Value* v = &out_.values.back();
    v->kind = k;
    return v;
  }
  Value* make_int(int64_t i) {
    Value* v = make(Kind::Int);
    v->i = i;
    return v;
  }
  Value* make_str(std::string s, bool unicode) {
    const bool text = valid_utf8(s);
    if (unicode && !text) fail("a string is not valid UTF-8");
    Value* v = make(text ? Kind::Str : Kind::Bytes);
    v->s = std::move(s);
    return v;
  }
  void add_child(Value* parent, const Value* child) {
    parent->depth = std::max(parent->depth, child->depth + 1);
    if (parent->depth > lim_.max_depth) fail("data is nested more than " + std::to_string(lim_.max_depth) + " levels deep");
  }
  void append(Value* container, const Value* item) {
    container->items.push_back(item);
    add_child(container, item);
  }

  // ---- stack
  void push(Value* v) {
    if (stack_.size() >= lim_.max_stack) fail("stack grows past " + std::to_string(lim_.max_stack) + " values");
    stack_.push_back(v);
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  Value* pop() {
    if (stack_.size() <= floor()) fail("stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.size() <= floor()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<Value*> pop_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  Value* make_tuple(const std::vector<Value*>& items) {
    Value* t = make(Kind::Tuple);
    t->items.reserve(items.size());
    for (auto* v : items) append(t, v);
    return t;
  }

  // ---- memo
  void memo_put(uint64_t idx, Value* v) {
    if (memo_.size() >= lim_.max_memo && !memo_.count(idx)) fail("more than " + std::to_string(lim_.max_memo) + " memo entries");
    memo_[idx] = v;
  }
  Value* memo_get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) fail("memo reference " + std::to_string(idx) + " points to nothing");
    return it->second;
  }

  // ---- containers
  Value* as(Value* v, Kind k, const char* what) {
    if (v->kind != k) fail(std::string(what) + " needs a " + kind_name(k) + ", got a " + kind_name(v->kind));
    return v;
  }
  void set_item(Value* d, Value* k, Value* v) {
    as(d, Kind::Dict, "SETITEM");
    append(d, k);
    append(d, v);
  }
  int64_t as_int(const Value* v, const char* what) {
    if (v->kind == Kind::Int) return v->i;
    if (v->kind == Kind::Bool) return v->b ? 1 : 0;
    fail(std::string(what) + " must be an int, got a " + kind_name(v->kind));
  }

  // ---- globals, storages, tensors and calls (pickle_globals.cpp)
  Value* make_global(const std::string& module, const std::string& name);
  GlobalInfo info(const Value* v);
  // persistent id: ('storage', <storage type>, key, location, numel)
  Value* persistent_load(Value* pid);
  std::vector<int64_t> int_tuple(const Value* v, const char* what);
  Value* rebuild_tensor(const Value* args, bool v2);
  // REDUCE / NEWOBJ: the callable is an allowed global; the result is data, never a call.
  Value* call(Value* callable, Value* args, bool newobj);
  void build(Value* obj, Value* state);

  // ---- the opcode loop (torch_pickle.cpp)
  int64_t parse_decimal(const std::string& s, const char* what);
  // One opcode; returns true at STOP.
  bool step(uint8_t op);

  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0, op_pos_ = 0;
  const std::string& label_;
  Limits lim_;
  Pickle out_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
  std::unordered_map<const Value*, GlobalInfo> roles_;
  std::map<std::string, size_t> storage_by_key_;
  Value* root_ = nullptr;
};

}  // namespace moh::pickle::detail
