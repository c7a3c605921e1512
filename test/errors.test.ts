import { expect } from 'chai';
import { oneLine, ValidationError, VfwireError } from '../src/errors.js';

describe('errors', () => {
  it('prefixes VM, step and device; quotes odd VM names so a message stays on one line', () => {
    expect(new VfwireError('boom', { vm: 'web1', step: 'rep-join', device: 'enp3s0f0r0' }).message).to.equal(
      'vm web1: rep-join: enp3s0f0r0: boom',
    );
    const odd = new ValidationError('bad', { vm: 'my\nvm' });
    expect(odd.message).to.equal('vm "my\\nvm": bad');
    expect(odd.vm).to.equal('my\nvm');
  });

  it('oneLine joins the causes without repeating them', () => {
    const inner = new Error('RTNETLINK answers: File exists\nmore');
    const outer = new VfwireError('failed to vxlan-create vfwvx100', { vm: 'web1', cause: inner });
    expect(oneLine(outer)).to.equal('vm web1: failed to vxlan-create vfwvx100: RTNETLINK answers: File exists; more');
    expect(oneLine(new VfwireError('x', { cause: new Error('x') }))).to.equal('x');
  });
});
