// Mocha reporter of the kernel lab: the spec reporter on the console and, at the same time,
// mocha's JSON reporter into the file of --reporter-option output=FILE (the results share).
// CommonJS because mocha loads reporters with require().
'use strict';

const Mocha = require('mocha');

class LabReporter extends Mocha.reporters.Base {
  constructor(runner, options) {
    super(runner, options);
    new Mocha.reporters.Spec(runner, options);
    new Mocha.reporters.JSON(runner, options);
  }
}

module.exports = LabReporter;
