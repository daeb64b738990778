// The restricted unpickler: a flat opcode loop over an explicit value stack (see torch_pickle.h for the contract).
#include "common/weights/torch_pickle.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>

#include "common/error.h"

namespace moh::pickle {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::BigInt: return "big int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Record: return "object";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

namespace {

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

const std::map<std::string, DType>& storage_types() {
  static const std::map<std::string, DType> m = {
      {"FloatStorage", DType::F32}, {"HalfStorage", DType::F16},  {"BFloat16Storage", DType::BF16},
      {"DoubleStorage", DType::F64}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
      {"ShortStorage", DType::I16}, {"CharStorage", DType::I8},   {"ByteStorage", DType::U8},
      {"BoolStorage", DType::BOOL}, {"UntypedStorage", DType::U8}};
  return m;
}

GlobalInfo classify_global(const std::string& module, const std::string& name) {
  const std::string full = module + "." + name;
  static const std::map<std::string, Role> exact = {
      {"collections.OrderedDict", Role::Dict},
      {"collections.defaultdict", Role::Dict},
      {"torch._utils._rebuild_tensor_v2", Role::RebuildTensorV2},
      {"torch._utils._rebuild_tensor", Role::RebuildTensor},
      {"torch._utils._rebuild_parameter", Role::RebuildParameter},
      {"torch._utils._rebuild_parameter_with_state", Role::RebuildParameter},
      {"torch._tensor._rebuild_from_type_v2", Role::RebuildFromType},
      {"torch.Tensor", Role::TensorType},
      {"torch._tensor.Tensor", Role::TensorType},
      {"torch.nn.parameter.Parameter", Role::TensorType},
      {"torch.Size", Role::Size},
      {"_codecs.encode", Role::CodecsEncode},
      {"builtins.set", Role::SetType},
      {"builtins.frozenset", Role::SetType},
      {"__builtin__.set", Role::SetType},
      {"builtins.bytearray", Role::BytearrayType},
      {"torch.jit._pickle.restore_type_tag", Role::Identity},
      {"torch.jit._pickle.build_intlist", Role::Identity},
      {"torch.jit._pickle.build_doublelist", Role::Identity},
      {"torch.jit._pickle.build_boollist", Role::Identity},
      {"torch.jit._pickle.build_tensorlist", Role::Identity},
      // Plain data classes and inert values: kept as opaque records / names.
      {"argparse.Namespace", Role::Record},
      {"collections.Counter", Role::Record},
      {"copyreg._reconstructor", Role::Record},
      {"copy_reg._reconstructor", Role::Record},
      {"numpy.core.multiarray.scalar", Role::Record},
      {"numpy._core.multiarray.scalar", Role::Record},
      {"numpy.core.multiarray._reconstruct", Role::Record},
      {"numpy._core.multiarray._reconstruct", Role::Record},
      {"numpy.dtype", Role::Record},
      {"numpy.ndarray", Role::Record},
      {"pathlib.PosixPath", Role::Record},
      {"pathlib.WindowsPath", Role::Record},
      {"pathlib.PurePosixPath", Role::Record},
      {"pathlib.PureWindowsPath", Role::Record},
      {"datetime.datetime", Role::Record},
      {"datetime.date", Role::Record},
      {"datetime.time", Role::Record},
      {"datetime.timedelta", Role::Record},
      {"datetime.timezone", Role::Record},
      {"torch.device", Role::Record},
      {"torch.dtype", Role::Record},
  };
  auto it = exact.find(full);
  if (it != exact.end()) return {it->second};
  if (module == "torch" || module == "torch.storage" || module == "torch.cuda") {
    auto s = storage_types().find(name);
    if (s != storage_types().end()) return {Role::Storage, s->second};
  }
  // torch dtype / layout / memory-format names are plain values (e.g. a dtype stored in training state).
  static const char* torch_values[] = {"float16", "float32", "float64", "bfloat16", "half", "float", "double",
                                       "int8", "int16", "int32", "int64", "uint8", "bool", "long", "int", "short",
                                       "complex64", "complex128", "strided", "sparse_coo", "contiguous_format",
                                       "preserve_format", "channels_last"};
  if (module == "torch")
    for (const char* v : torch_values)
      if (name == v) return {Role::Record};
  // Harmless builtin types (e.g. a defaultdict's factory); every other builtin (eval, exec, getattr, ...) is refused.
  if (module == "builtins" || module == "__builtin__") {
    static const char* types[] = {"list", "dict", "tuple", "int", "float", "str", "bool", "complex", "slice",
                                  "bytes", "object", "range"};
    for (const char* t : types)
      if (name == t) return {Role::Record};
  }
  return {};
}

// ------------------------------------------------------------------------------------------- the machine
enum Op : uint8_t {
  MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', FLOAT = 'F', INT = 'I', BININT = 'J',
  BININT1 = 'K', LONG = 'L', BININT2 = 'M', NONE = 'N', PERSID = 'P', BINPERSID = 'Q', REDUCE = 'R',
  STRING = 'S', BINSTRING = 'T', SHORT_BINSTRING = 'U', UNICODE = 'V', BINUNICODE = 'X', APPEND = 'a',
  BUILD = 'b', GLOBAL = 'c', DICT = 'd', EMPTY_DICT = '}', APPENDS = 'e', GET = 'g', BINGET = 'h', INST = 'i',
  LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']', OBJ = 'o', PUT = 'p', BINPUT = 'q', LONG_BINPUT = 'r',
  SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G', PROTO = 0x80, NEWOBJ = 0x81,
  EXT1 = 0x82, EXT2 = 0x83, EXT4 = 0x84, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88,
  NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b, BINBYTES = 'B', SHORT_BINBYTES = 'C', SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e, EMPTY_SET = 0x8f, ADDITEMS = 0x90, FROZENSET = 0x91, NEWOBJ_EX = 0x92,
  STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95, BYTEARRAY8 = 0x96, NEXT_BUFFER = 0x97, READONLY_BUFFER = 0x98,
};

bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

std::string shorten(const std::string& s, size_t n = 120) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

class Machine {
 public:
  Machine(const uint8_t* data, size_t size, const std::string& label, const Limits& limits)
      : p_(data), n_(size), label_(label), lim_(limits) {}

  Pickle run() {
    while (true) {
      if (pos_ >= n_) fail("ends without a STOP opcode (truncated)");
      op_pos_ = pos_;
      const uint8_t op = p_[pos_++];
      if (step(op)) break;
    }
    out_.root = root_;
    return std::move(out_);
  }

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

  // ---- globals
  Value* make_global(const std::string& module, const std::string& name) {
    auto identifier = [](const std::string& x) {
      if (x.empty() || x.size() > 200) return false;
      for (char c : x)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) return false;
      return true;
    };
    if (!identifier(module) || !identifier(name)) fail("a global's module or name is not a Python identifier");
    const std::string full = module + "." + name;
    const GlobalInfo g = classify_global(module, name);
    if (g.role == Role::Refused)
      fail("refers to global '" + full + "', which is not on the allow-list (tensors, storages, OrderedDict and plain "
           "data records such as argparse.Namespace); the file may try to run code, so it is refused and nothing "
           "was executed");
    Value* v = make(Kind::Global);
    v->s = module + "." + name;
    roles_[v] = g;
    return v;
  }
  GlobalInfo info(const Value* v) {
    auto it = roles_.find(v);
    return it == roles_.end() ? GlobalInfo{} : it->second;
  }

  // persistent id: ('storage', <storage type>, key, location, numel)
  Value* persistent_load(Value* pid) {
    if (pid->kind != Kind::Tuple || pid->items.size() != 5 || pid->items[0]->kind != Kind::Str ||
        pid->items[0]->s != "storage")
      fail("unexpected persistent id (expected ('storage', type, key, location, numel))");
    const Value* type = pid->items[1];
    const GlobalInfo g = info(type);
    if (type->kind != Kind::Global || g.role != Role::Storage)
      fail("persistent id names a storage type that is not a supported torch storage: " +
           (type->kind == Kind::Global ? "'" + shorten(type->s) + "'" : std::string("a ") + kind_name(type->kind)));
    const Value* key = pid->items[2];
    if (key->kind != Kind::Str || key->s.empty() || key->s.size() > 256 || key->s.find('/') != std::string::npos ||
        key->s.find('\0') != std::string::npos)
      fail("storage key is not a short string without '/'");
    if (pid->items[3]->kind != Kind::Str) fail("storage location is not a string");
    const int64_t numel = as_int(pid->items[4], "storage numel");
    const uint64_t es = dtype_size(g.dtype);
    if (numel < 0 || static_cast<uint64_t>(numel) > (uint64_t(1) << 62) / es)
      fail("storage '" + key->s + "' declares an impossible element count " + std::to_string(numel));
    auto it = storage_by_key_.find(key->s);
    size_t idx;
    if (it != storage_by_key_.end()) {
      idx = it->second;
      const StorageRef& s = out_.storages[idx];
      if (s.dtype != g.dtype || s.numel != static_cast<uint64_t>(numel))
        fail("storage '" + key->s + "' is declared twice with different types or sizes");
    } else {
      idx = out_.storages.size();
      out_.storages.push_back({key->s, g.dtype, static_cast<uint64_t>(numel), pid->items[3]->s});
      storage_by_key_[key->s] = idx;
    }
    Value* v = make(Kind::Storage);
    v->index = idx;
    return v;
  }

  std::vector<int64_t> int_tuple(const Value* v, const char* what) {
    if (v->kind != Kind::Tuple && v->kind != Kind::List) fail(std::string("tensor ") + what + " is not a tuple");
    if (v->items.size() > lim_.max_dims) fail(std::string("tensor ") + what + " has more than " + std::to_string(lim_.max_dims) + " dimensions");
    std::vector<int64_t> out;
    for (const Value* x : v->items) {
      const int64_t i = as_int(x, "a tensor size or stride");
      if (i < 0) fail(std::string("tensor ") + what + " has a negative entry " + std::to_string(i));
      out.push_back(i);
    }
    return out;
  }

  Value* rebuild_tensor(const Value* args, bool v2) {
    if (args->kind != Kind::Tuple || args->items.size() < 4) fail("_rebuild_tensor needs (storage, offset, size, stride, ...)");
    const Value* st = args->items[0];
    if (st->kind != Kind::Storage) fail(std::string("_rebuild_tensor's first argument is a ") + kind_name(st->kind) + ", not a storage");
    const StorageRef& s = out_.storages[st->index];
    TensorRef t;
    t.storage = st->index;
    t.offset = as_int(args->items[1], "storage offset");
    t.sizes = int_tuple(args->items[2], "size");
    t.strides = int_tuple(args->items[3], "stride");
    if (v2 && args->items.size() >= 5) t.requires_grad = as_int(args->items[4], "requires_grad") != 0;
    if (t.sizes.size() != t.strides.size())
      fail("tensor size has " + std::to_string(t.sizes.size()) + " dimensions but stride has " + std::to_string(t.strides.size()));
    if (t.offset < 0) fail("tensor storage offset " + std::to_string(t.offset) + " is negative");
    // numel and the furthest element, overflow-checked (all values are >= 0 here).
    constexpr uint64_t kMax = uint64_t(1) << 62;
    uint64_t numel = 1, last = static_cast<uint64_t>(t.offset);
    for (size_t d = 0; d < t.sizes.size(); ++d) {
      const uint64_t sz = static_cast<uint64_t>(t.sizes[d]);
      if (sz != 0 && numel > kMax / sz) fail("tensor shape overflows (more than 2^62 elements)");
      numel *= sz;
    }
    if (numel > 0) {
      for (size_t d = 0; d < t.sizes.size(); ++d) {
        const uint64_t span = static_cast<uint64_t>(t.sizes[d] - 1), stride = static_cast<uint64_t>(t.strides[d]);
        if (stride != 0 && span > (kMax - last) / stride) fail("tensor extent overflows");
        last += span * stride;
      }
      if (last >= s.numel)
        fail("tensor view (offset " + std::to_string(t.offset) + ", last element " + std::to_string(last) +
             ") runs past its storage '" + s.key + "' of " + std::to_string(s.numel) + " elements");
    } else if (static_cast<uint64_t>(t.offset) > s.numel) {
      fail("empty tensor's offset lies past its storage '" + s.key + "'");
    }
    Value* v = make(Kind::Tensor);
    v->index = out_.tensors.size();
    out_.tensors.push_back(std::move(t));
    return v;
  }

  // REDUCE / NEWOBJ: the callable is an allowed global; the result is data, never a call.
  Value* call(Value* callable, Value* args, bool newobj) {
    if (callable->kind != Kind::Global)
      fail(std::string(newobj ? "NEWOBJ" : "REDUCE") + " on a " + kind_name(callable->kind) + " (only allowed globals can be called)");
    if (args->kind != Kind::Tuple) fail("call arguments are a " + std::string(kind_name(args->kind)) + ", not a tuple");
    const auto& a = args->items;
    switch (info(callable).role) {
      case Role::Dict: {
        Value* d = make(Kind::Dict);
        // OrderedDict([(k, v), ...]): take the pairs (protocol 2 passes none; defaultdict's factory is ignored).
        if (callable->s == "collections.OrderedDict" && !a.empty() && a[0]->kind == Kind::List)
          for (const Value* pair : a[0]->items) {
            if (pair->kind != Kind::Tuple || pair->items.size() != 2) fail("OrderedDict item is not a (key, value) pair");
            append(d, pair->items[0]);
            append(d, pair->items[1]);
          }
        return d;
      }
      case Role::RebuildTensorV2: return rebuild_tensor(args, true);
      case Role::RebuildTensor: return rebuild_tensor(args, false);
      case Role::RebuildParameter:
        if (a.empty() || a[0]->kind != Kind::Tensor) fail("_rebuild_parameter's first argument is not a tensor");
        return const_cast<Value*>(a[0]);
      case Role::RebuildFromType: {
        // (func, type, args, state): func must itself be an allowed tensor rebuild, type a tensor type.
        if (a.size() < 3 || a[0]->kind != Kind::Global || a[1]->kind != Kind::Global || a[2]->kind != Kind::Tuple)
          fail("_rebuild_from_type_v2 needs (func, type, args, state)");
        const Role fr = info(a[0]).role;
        if (info(a[1]).role != Role::TensorType) fail("_rebuild_from_type_v2 of type '" + shorten(a[1]->s) + "' (not a tensor type)");
        if (fr == Role::RebuildTensorV2 || fr == Role::RebuildTensor || fr == Role::RebuildParameter)
          return call(const_cast<Value*>(a[0]), const_cast<Value*>(a[2]), false);
        fail("_rebuild_from_type_v2 with function '" + shorten(a[0]->s) + "'");
      }
      case Role::Identity:
        if (a.empty()) fail("'" + callable->s + "' needs an argument");
        return const_cast<Value*>(a[0]);
      case Role::Size:
        if (a.size() != 1 || a[0]->kind != Kind::Tuple) fail("torch.Size needs one tuple");
        return const_cast<Value*>(a[0]);
      case Role::CodecsEncode: {
        if (a.empty() || a[0]->kind != Kind::Str) fail("_codecs.encode needs a string");
        if (a.size() >= 2 && (a[1]->kind != Kind::Str || (a[1]->s != "latin1" && a[1]->s != "latin-1")))
          fail("_codecs.encode with an encoding other than latin1");
        // UTF-8 code points U+0000..U+00FF -> one byte each.
        Value* b = make(Kind::Bytes);
        const std::string& s = a[0]->s;
        for (size_t i = 0; i < s.size(); ++i) {
          const unsigned char c = static_cast<unsigned char>(s[i]);
          if (c < 0x80) b->s.push_back(static_cast<char>(c));
          else if ((c == 0xc2 || c == 0xc3) && i + 1 < s.size()) {
            b->s.push_back(static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3f)));
            ++i;
          } else fail("_codecs.encode: character outside latin1");
        }
        return b;
      }
      case Role::SetType: {
        Value* l = make(Kind::List);
        if (!a.empty() && (a[0]->kind == Kind::List || a[0]->kind == Kind::Tuple))
          for (const Value* x : a[0]->items) append(l, x);
        return l;
      }
      case Role::BytearrayType: {
        Value* b = make(Kind::Bytes);
        if (!a.empty() && (a[0]->kind == Kind::Bytes || a[0]->kind == Kind::Str)) b->s = a[0]->s;
        return b;
      }
      case Role::Record:
      case Role::TensorType:
      case Role::Storage: {
        Value* r = make(Kind::Record);
        r->s = callable->s;
        for (const Value* x : a) append(r, x);
        return r;
      }
      case Role::Refused: break;
    }
    fail("cannot call global '" + shorten(callable->s) + "'");
  }

  void build(Value* obj, Value* state) {
    switch (obj->kind) {
      case Kind::Record:
      case Kind::Dict:  // e.g. OrderedDict._metadata of a state dict
        obj->state = state;
        add_child(obj, state);
        return;
      case Kind::Tensor: return;  // Python attributes of a tensor/parameter: not weights
      default: fail(std::string("BUILD on a ") + kind_name(obj->kind));
    }
  }

  int64_t parse_decimal(const std::string& s, const char* what) {
    if (s.empty() || s.size() > 20) fail(std::string("bad ") + what + " literal");
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (errno != 0 || end != s.c_str() + s.size()) fail(std::string("bad ") + what + " literal '" + shorten(s, 24) + "'");
    return v;
  }

  // One opcode; returns true at STOP.
  bool step(uint8_t op) {
    switch (op) {
      case PROTO: {
        const uint64_t v = le(1);
        if (v > 5) fail("unsupported pickle protocol " + std::to_string(v));
        return false;
      }
      case FRAME: le(8); return false;  // framing is only a read-ahead hint
      case STOP:
        root_ = pop();
        return true;
      case MARK: marks_.push_back(stack_.size()); return false;
      case POP: pop(); return false;
      case POP_MARK: pop_mark(); return false;
      case DUP: push(top()); return false;

      case NONE: push(make(Kind::None)); return false;
      case NEWTRUE:
      case NEWFALSE: {
        Value* v = make(Kind::Bool);
        v->b = op == NEWTRUE;
        push(v);
        return false;
      }
      case BININT: push(make_int(static_cast<int32_t>(static_cast<uint32_t>(le(4))))); return false;
      case BININT1: push(make_int(static_cast<int64_t>(le(1)))); return false;
      case BININT2: push(make_int(static_cast<int64_t>(le(2)))); return false;
      case INT: {
        const std::string s = line();
        if (s == "00" || s == "01") {
          Value* v = make(Kind::Bool);
          v->b = s == "01";
          push(v);
        } else {
          push(make_int(parse_decimal(s, "INT")));
        }
        return false;
      }
      case LONG: {
        std::string s = line();
        if (!s.empty() && s.back() == 'L') s.pop_back();
        push(make_int(parse_decimal(s, "LONG")));
        return false;
      }
      case LONG1:
      case LONG4: {
        const uint64_t len = op == LONG1 ? le(1) : le(4);
        const uint8_t* q = take(len);
        if (len <= 8) {
          uint64_t u = 0;
          for (uint64_t i = len; i-- > 0;) u = (u << 8) | q[i];
          if (len > 0 && len < 8 && (q[len - 1] & 0x80)) u |= ~uint64_t(0) << (8 * len);  // sign-extend
          push(make_int(static_cast<int64_t>(u)));
        } else {
          Value* v = make(Kind::BigInt);
          v->s.assign(reinterpret_cast<const char*>(q), static_cast<size_t>(len));
          push(v);
        }
        return false;
      }
      case BINFLOAT: {
        const uint8_t* q = take(8);
        uint64_t u = 0;
        for (int i = 0; i < 8; ++i) u = (u << 8) | q[i];  // big-endian
        Value* v = make(Kind::Float);
        std::memcpy(&v->f, &u, 8);
        push(v);
        return false;
      }
      case FLOAT: {
        const std::string s = line();
        char* end = nullptr;
        const double d = std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size()) fail("bad FLOAT literal");
        Value* v = make(Kind::Float);
        v->f = d;
        push(v);
        return false;
      }

      case BINUNICODE:
      case SHORT_BINUNICODE:
      case BINUNICODE8:
      case BINSTRING:
      case SHORT_BINSTRING:
      case BINBYTES:
      case SHORT_BINBYTES:
      case BINBYTES8:
      case BYTEARRAY8: {
        const int lb = (op == SHORT_BINUNICODE || op == SHORT_BINSTRING || op == SHORT_BINBYTES) ? 1
                       : (op == BINUNICODE8 || op == BINBYTES8 || op == BYTEARRAY8)        ? 8
                                                                                           : 4;
        const uint64_t len = le(lb);
        const uint8_t* q = take(len);
        std::string s(reinterpret_cast<const char*>(q), static_cast<size_t>(len));
        if (op == BINUNICODE || op == SHORT_BINUNICODE || op == BINUNICODE8) {
          push(make_str(std::move(s), true));
        } else if (op == BINSTRING || op == SHORT_BINSTRING) {
          push(make_str(std::move(s), false));  // Python 2 str: text when it is UTF-8
        } else {
          Value* v = make(Kind::Bytes);
          v->s = std::move(s);
          push(v);
        }
        return false;
      }

      case EMPTY_TUPLE: push(make(Kind::Tuple)); return false;
      case TUPLE: push(make_tuple(pop_mark())); return false;
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        const size_t k = op - TUPLE1 + 1;
        std::vector<Value*> items(k);
        for (size_t i = k; i-- > 0;) items[i] = pop();
        push(make_tuple(items));
        return false;
      }
      case EMPTY_LIST: push(make(Kind::List)); return false;
      case LIST: {
        auto items = pop_mark();
        Value* l = make(Kind::List);
        for (auto* v : items) append(l, v);
        push(l);
        return false;
      }
      case APPEND: {
        Value* v = pop();
        append(as(top(), Kind::List, "APPEND"), v);
        return false;
      }
      case APPENDS:
      case ADDITEMS: {
        auto items = pop_mark();
        Value* l = as(top(), Kind::List, op == APPENDS ? "APPENDS" : "ADDITEMS");
        for (auto* v : items) append(l, v);
        return false;
      }
      case EMPTY_SET: push(make(Kind::List)); return false;  // sets become lists
      case FROZENSET: {
        auto items = pop_mark();
        Value* l = make(Kind::List);
        for (auto* v : items) append(l, v);
        push(l);
        return false;
      }
      case EMPTY_DICT: push(make(Kind::Dict)); return false;
      case DICT: {
        auto items = pop_mark();
        if (items.size() % 2) fail("DICT with an odd number of items");
        Value* d = make(Kind::Dict);
        for (auto* v : items) append(d, v);
        push(d);
        return false;
      }
      case SETITEM: {
        Value* v = pop();
        Value* k = pop();
        set_item(top(), k, v);
        return false;
      }
      case SETITEMS: {
        auto items = pop_mark();
        if (items.size() % 2) fail("SETITEMS with an odd number of items");
        Value* d = top();
        for (size_t i = 0; i < items.size(); i += 2) set_item(d, items[i], items[i + 1]);
        return false;
      }

      case BINPUT: memo_put(le(1), top()); return false;
      case LONG_BINPUT: memo_put(le(4), top()); return false;
      case PUT: memo_put(static_cast<uint64_t>(parse_decimal(line(), "PUT")), top()); return false;
      case MEMOIZE: memo_put(memo_.size(), top()); return false;
      case BINGET: push(memo_get(le(1))); return false;
      case LONG_BINGET: push(memo_get(le(4))); return false;
      case GET: push(memo_get(static_cast<uint64_t>(parse_decimal(line(), "GET")))); return false;

      case GLOBAL: {
        const std::string module = line();
        const std::string name = line();
        push(make_global(module, name));
        return false;
      }
      case STACK_GLOBAL: {
        Value* name = pop();
        Value* module = pop();
        if (module->kind != Kind::Str || name->kind != Kind::Str) fail("STACK_GLOBAL needs two strings");
        push(make_global(module->s, name->s));
        return false;
      }
      case REDUCE: {
        Value* args = pop();
        Value* callable = pop();
        push(call(callable, args, false));
        return false;
      }
      case NEWOBJ: {
        Value* args = pop();
        Value* cls = pop();
        push(call(cls, args, true));
        return false;
      }
      case NEWOBJ_EX: {
        pop();  // kwargs: kept out of the record
        Value* args = pop();
        Value* cls = pop();
        push(call(cls, args, true));
        return false;
      }
      case BUILD: {
        Value* state = pop();
        build(top(), state);
        return false;
      }
      case BINPERSID: push(persistent_load(pop())); return false;

      case PERSID: fail("text persistent ids (PERSID) are not used by torch.save and are not supported");
      case INST:
      case OBJ: fail("INST/OBJ opcodes instantiate classes and are not supported");
      case EXT1:
      case EXT2:
      case EXT4: fail("extension-registry opcodes (EXT1/2/4) are not supported");
      case NEXT_BUFFER:
      case READONLY_BUFFER: fail("out-of-band buffers are not supported");
      case STRING:
      case UNICODE: fail("protocol-0 text strings are not supported");
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unknown opcode ") + hex);
      }
    }
  }

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

// JSON with a depth bound and a size budget (cycles and shared values cannot blow it up).
nlohmann::json json_of(const Value& v, int depth, size_t& budget) {
  using nlohmann::json;
  if (budget == 0 || depth <= 0) return "...";
  --budget;
  switch (v.kind) {
    case Kind::None: return nullptr;
    case Kind::Bool: return v.b;
    case Kind::Int: return v.i;
    case Kind::Float: return v.f;
    case Kind::Str: return v.s;
    case Kind::BigInt: return "<big int>";
    case Kind::Bytes: return "<" + std::to_string(v.s.size()) + " bytes>";
    case Kind::Global: return v.s;
    case Kind::Storage: return "<storage>";
    case Kind::Tensor: return "<tensor>";
    case Kind::Tuple:
    case Kind::List: {
      json a = json::array();
      for (const Value* x : v.items) a.push_back(json_of(*x, depth - 1, budget));
      return a;
    }
    case Kind::Dict: {
      json o = json::object();
      for (size_t i = 0; i + 1 < v.items.size(); i += 2) {
        const Value* k = v.items[i];
        const std::string key = k->kind == Kind::Str ? k->s : k->kind == Kind::Int ? std::to_string(k->i) : "<key>";
        o[key] = json_of(*v.items[i + 1], depth - 1, budget);
      }
      return o;
    }
    case Kind::Record: {
      // argparse.Namespace: NEWOBJ() + BUILD({fields}) -> the fields themselves.
      json o = json::object();
      o["__class__"] = v.s;
      if (!v.items.empty()) {
        json a = json::array();
        for (const Value* x : v.items) a.push_back(json_of(*x, depth - 1, budget));
        o["__args__"] = a;
      }
      if (v.state && v.state->kind == Kind::Dict) {
        for (size_t i = 0; i + 1 < v.state->items.size(); i += 2)
          if (v.state->items[i]->kind == Kind::Str && v.state->items[i]->s != "__class__")
            o[v.state->items[i]->s] = json_of(*v.state->items[i + 1], depth - 1, budget);
      } else if (v.state) {
        o["__state__"] = json_of(*v.state, depth - 1, budget);
      }
      return o;
    }
  }
  return nullptr;
}

}  // namespace

Pickle unpickle(const uint8_t* data, size_t size, const std::string& label, const Limits& limits) {
  return Machine(data, size, label, limits).run();
}

const Value* dict_get(const Value& d, const std::string& key) {
  if (d.kind != Kind::Dict) return nullptr;
  const Value* found = nullptr;
  for (size_t i = 0; i + 1 < d.items.size(); i += 2)
    if (d.items[i]->kind == Kind::Str && d.items[i]->s == key) found = d.items[i + 1];
  return found;
}

std::vector<std::string> dict_keys(const Value& d) {
  std::vector<std::string> out;
  if (d.kind != Kind::Dict) return out;
  std::map<std::string, bool> seen;
  for (size_t i = 0; i + 1 < d.items.size(); i += 2)
    if (d.items[i]->kind == Kind::Str && seen.emplace(d.items[i]->s, true).second) out.push_back(d.items[i]->s);
  return out;
}

std::string to_json(const Value& v, int max_depth, size_t max_chars) {
  size_t budget = max_chars / 4 + 1;
  std::string s = json_of(v, max_depth, budget).dump();
  return s.size() <= max_chars ? s : "\"<" + std::to_string(s.size()) + " characters, too large to keep>\"";
}

}  // namespace moh::pickle
