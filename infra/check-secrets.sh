#!/bin/sh
# Refuses to start the stack on a placeholder or weak secret (compose's ${VAR:?} only catches an empty one).
#   check-secrets.sh NAME...           each NAME's value must be at least SECRET_MIN_LENGTH (16) characters,
#                                      none of .env.example's placeholders, and only A-Z a-z 0-9 . _ ~ -
#                                      (the database passwords go into connection URLs unescaped)
#   check-secrets.sh NAME!=OTHER       the two values must differ (a service's own login is not the admin's)
# Each refusal is one line on stderr naming the variable, never its value; the exit status is 1 if any.
# A good secret: openssl rand -hex 24
set -u
min=${SECRET_MIN_LENGTH:-16}
status=0
if [ "$#" -eq 0 ]; then
  echo "check-secrets: name the variables to check" >&2
  exit 2
fi
refuse() {
  echo "refusing to start: $1" >&2
  status=1
}
for arg in "$@"; do
  name=${arg%%!=*}
  other=
  [ "$name" != "$arg" ] && other=${arg#*!=}
  for n in "$name" $other; do
    case $n in
      '' | [0-9]* | *[!A-Za-z0-9_]*) echo "check-secrets: '$n' is not a variable name" >&2; exit 2 ;;
    esac
  done
  eval "value=\${$name-}"
  if [ -n "$other" ]; then
    eval "other_value=\${$other-}"
    [ "$value" = "$other_value" ] && refuse "$name must differ from $other (set its own value in .env)"
    continue
  fi
  lower=$(printf '%s' "$value" | tr 'A-Z' 'a-z')
  case $lower in
    '') refuse "$name is empty or unset; set it in .env" ;;
    *change-me* | *changeme* | *placeholder* | password* | *minioadmin*)
      refuse "$name still holds a placeholder; set a generated secret in .env (openssl rand -hex 24)" ;;
    *[!a-z0-9._~-]*)
      refuse "$name holds a character outside A-Z a-z 0-9 . _ ~ -; use a generated secret (openssl rand -hex 24)" ;;
    *)
      [ "${#value}" -lt "$min" ] &&
        refuse "$name is ${#value} characters long, under $min; use a generated secret (openssl rand -hex 24)" ;;
  esac
done
[ "$status" -eq 0 ] && echo "check-secrets: $# checks passed"
exit "$status"
