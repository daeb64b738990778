// The restricted unpickler's opcode loop: one case per opcode over an explicit value stack (see torch_pickle.h for
// the contract, pickle_machine.h for how the machine is split). Mirrors Python's Lib/pickle.py `_Unpickler` dispatch
// table, minus everything that executes code.
#include "common/weights/torch_pickle.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/weights/pickle_machine.h"

namespace moh::pickle {

namespace detail {

namespace {

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

}  // namespace

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

Pickle Machine::run() {
  while (true) {
    if (pos_ >= n_) fail("ends without a STOP opcode (truncated)");
    op_pos_ = pos_;
    const uint8_t op = p_[pos_++];
    if (step(op)) break;
  }
  out_.root = root_;
  return std::move(out_);
}

int64_t Machine::parse_decimal(const std::string& s, const char* what) {
  if (s.empty() || s.size() > 20) fail(std::string("bad ") + what + " literal");
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) fail(std::string("bad ") + what + " literal '" + shorten(s, 24) + "'");
  return v;
}

// One opcode; returns true at STOP.
bool Machine::step(uint8_t op) {
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

}  // namespace detail

Pickle unpickle(const uint8_t* data, size_t size, const std::string& label, const Limits& limits) {
  return detail::Machine(data, size, label, limits).run();
}

}  // namespace moh::pickle
