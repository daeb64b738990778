// The one page moh-serve answers GET / with (plain HTML + JS, no build step), defined in index_html.cpp.
#pragma once

namespace moh::serve {
extern const char* const kIndexHtml;
}
