'use strict';
// The package version, from package.json, so the `hello` client name never goes stale.
module.exports = { VERSION: require('../package.json').version };
