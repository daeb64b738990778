// The restricted unpickler's allow-list (see torch_pickle.h, pickle_machine.h): which globals a torch.save pickle may
// name and what calling each yields as plain data: dicts, storages from persistent ids, tensor views validated
// against their storage, inert records. Mirrors the globals torch.save emits (torch/_utils.py `_rebuild_tensor_v2`,
// torch/serialization.py `persistent_load`) and the allow-list of torch.load(weights_only=True)
// (torch/_weights_only_unpickler.py), with plain data classes kept as records instead of instantiated.
#include <cctype>
#include <map>
#include <string>
#include <vector>

#include "common/weights/pickle_machine.h"

namespace moh::pickle::detail {

namespace {

const std::map<std::string, DType>& storage_types() {
  static const std::map<std::string, DType> m = {
      {"FloatStorage", DType::F32}, {"HalfStorage", DType::F16},  {"BFloat16Storage", DType::BF16},
      {"DoubleStorage", DType::F64}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
      {"ShortStorage", DType::I16}, {"CharStorage", DType::I8},   {"ByteStorage", DType::U8},
      {"BoolStorage", DType::BOOL}, {"UntypedStorage", DType::U8}};
  return m;
}

}  // namespace

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

Value* Machine::make_global(const std::string& module, const std::string& name) {
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

GlobalInfo Machine::info(const Value* v) {
  auto it = roles_.find(v);
  return it == roles_.end() ? GlobalInfo{} : it->second;
}

// persistent id: ('storage', <storage type>, key, location, numel)
Value* Machine::persistent_load(Value* pid) {
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

std::vector<int64_t> Machine::int_tuple(const Value* v, const char* what) {
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

Value* Machine::rebuild_tensor(const Value* args, bool v2) {
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
Value* Machine::call(Value* callable, Value* args, bool newobj) {
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

void Machine::build(Value* obj, Value* state) {
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

}  // namespace moh::pickle::detail
