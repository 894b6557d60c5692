// fmt's compiled part, built into tidemark from Debian's headers (libfmt-dev) rather than loaded
// from libfmt.so: one shared library fewer for every process to load (docs/decisions.md, "Few
// shared libraries at start"). The other sources include fmt's headers as usual: without
// FMT_HEADER_ONLY they declare what this file defines, as they would for libfmt.so.
#include <fmt/format-inl.h>

// The list below is fmt 9's (its src/format.cc); another major version may declare others.
static_assert(FMT_VERSION >= 90000 && FMT_VERSION < 100000,
              "common/thirdparty/fmt.cpp instantiates fmt 9's templates: compare the list with "
              "the installed fmt's src/format.cc");

FMT_BEGIN_NAMESPACE
namespace detail {

// The templates format.h declares but only instantiates in fmt's own library.
template auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;
template locale_ref::locale_ref(const std::locale& loc);
template auto locale_ref::get<std::locale>() const -> std::locale;
template auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template auto thousands_sep_impl(locale_ref) -> thousands_sep_result<wchar_t>;
template auto decimal_point_impl(locale_ref) -> char;
template auto decimal_point_impl(locale_ref) -> wchar_t;
template void buffer<char>::append(const char*, const char*);
template void vformat_to(buffer<char>&, string_view, basic_format_args<FMT_BUFFER_CONTEXT(char)>,
                         locale_ref);

}  // namespace detail
FMT_END_NAMESPACE
