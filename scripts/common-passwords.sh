#!/usr/bin/env bash
# Regenerates commonpasswords/passwords.txt: the passwords of the npm
# package @zxcvbn-ts/language-common (MIT) that fit the password rule
# (8 to 128 characters, no control character), most common first. Run at
# development time; the generated list is committed, the package is not.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${VERSION:-4.1.3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null && npm install --no-audit --no-fund --ignore-scripts "@zxcvbn-ts/language-common@$VERSION" >/dev/null)
node -e '
const list = require(process.argv[1]).dictionary["passwords-common"];
const fits = list.filter((p) => { const n = [...p].length; return n >= 8 && n <= 128 && !/[\u0000-\u001f\u007f-\u009f]/.test(p); });
process.stdout.write(fits.join("\n") + "\n");
' "$work/node_modules/@zxcvbn-ts/language-common" > commonpasswords/passwords.txt
cp "$work/node_modules/@zxcvbn-ts/language-common/LICENSE.txt" commonpasswords/LICENSE.txt
echo "commonpasswords/passwords.txt: $(wc -l < commonpasswords/passwords.txt) passwords from @zxcvbn-ts/language-common $VERSION" >&2
