// The OpenFlow rules of one VNI (overlay/ovs/flows.ts) as text; the lab suite ovs-datapath runs
// them on Open vSwitch with packets.

import { expect } from 'chai';
import { countDatapathFlows } from '../../src/overlay/ovs/checks.js';
import { vniFlows, vniFlowsCommand } from '../../src/overlay/ovs/flows.js';

describe('OVS rules of a VNI', () => {
  const v = {
    vni: 100,
    members: [
      { port: 'r0', mac: '52:54:00:00:00:01' },
      { port: 'r1', mac: '52:54:00:00:00:02' },
    ],
    peers: ['198.18.0.2', '198.18.0.3'],
  };

  it('admits each member by its lease MAC (ARP by sender too) and each tunnel by the VNI, then forwards', () => {
    expect(vniFlows(v)).to.deep.equal([
      'delete cookie=0x64/-1',
      'add cookie=0x64,table=0,priority=110,in_port=r0,arp,arp_sha=52:54:00:00:00:01,actions=load:100->NXM_NX_REG0[],load:1->NXM_NX_REG1[],resubmit(,1)',
      'add cookie=0x64,table=0,priority=105,in_port=r0,arp,actions=drop',
      'add cookie=0x64,table=0,priority=100,in_port=r0,dl_src=52:54:00:00:00:01,actions=load:100->NXM_NX_REG0[],load:1->NXM_NX_REG1[],resubmit(,1)',
      'add cookie=0x64,table=0,priority=110,in_port=r1,arp,arp_sha=52:54:00:00:00:02,actions=load:100->NXM_NX_REG0[],load:1->NXM_NX_REG1[],resubmit(,1)',
      'add cookie=0x64,table=0,priority=105,in_port=r1,arp,actions=drop',
      'add cookie=0x64,table=0,priority=100,in_port=r1,dl_src=52:54:00:00:00:02,actions=load:100->NXM_NX_REG0[],load:1->NXM_NX_REG1[],resubmit(,1)',
      'add cookie=0x64,table=0,priority=100,in_port=vfwtun,tun_id=100,tun_src=198.18.0.2,actions=load:100->NXM_NX_REG0[],load:2->NXM_NX_REG1[],resubmit(,1)',
      'add cookie=0x64,table=0,priority=100,in_port=vfwtun,tun_id=100,tun_src=198.18.0.3,actions=load:100->NXM_NX_REG0[],load:2->NXM_NX_REG1[],resubmit(,1)',
      'add cookie=0x64,table=1,priority=100,reg0=100,dl_dst=52:54:00:00:00:01,actions=output:r0',
      'add cookie=0x64,table=1,priority=100,reg0=100,dl_dst=52:54:00:00:00:02,actions=output:r1',
      'add cookie=0x64,table=1,priority=10,reg0=100,reg1=1,actions=output:r0,output:r1,set_field:100->tun_id,set_field:198.18.0.2->tun_dst,output:vfwtun,set_field:198.18.0.3->tun_dst,output:vfwtun',
      'add cookie=0x64,table=1,priority=10,reg0=100,reg1=2,actions=output:r0,output:r1',
    ]);
  });

  it('a VNI with no member is only the delete of its rules, peers or not', () => {
    expect(vniFlows({ vni: 200, members: [], peers: ['198.18.0.2'] })).to.deep.equal(['delete cookie=0xc8/-1']);
  });

  it('a VNI without peers floods among its members only, and admits no VXLAN', () => {
    const lines = vniFlows({ ...v, peers: [] });
    expect(lines.filter((l) => l.includes('vfwtun'))).to.deep.equal([]);
    expect(lines.at(-1)).to.equal('add cookie=0x64,table=1,priority=10,reg0=100,reg1=1,actions=output:r0,output:r1');
  });

  it('is replaced in one OpenFlow 1.4 bundle, its script shown (it holds no secret)', () => {
    const cmd = vniFlowsCommand({ bridge: 'vfwovs', runDir: '/var/run/openvswitch' }, v);
    expect(cmd.argv).to.deep.equal([
      'ovs-ofctl',
      '-O',
      'OpenFlow14',
      '--bundle',
      'add-flows',
      'unix:/var/run/openvswitch/vfwovs.mgmt',
      '-',
    ]);
    expect(cmd.inputShown).to.equal(true);
    expect(cmd.stdin!.split('\n').at(-1)).to.equal('');
  });

  it("doctor's datapath flow count keeps ARP apart (mlx5 matches no ARP field), and counts only lines with actions", () => {
    const dump = [
      'recirc_id(0),in_port(2),eth(src=52:54:00:00:00:01,dst=ff:ff:ff:ff:ff:ff),eth_type(0x0806),arp(sha=52:54:00:00:00:01), packets:1, bytes:42, used:0.1s, actions:3',
      'recirc_id(0),in_port(2),eth(src=52:54:00:00:00:01,dst=52:54:00:00:00:02),eth_type(0x0800), packets:9, bytes:882, used:0.1s, actions:3',
      'recirc_id(0),tunnel(tun_id=0x64,src=198.18.0.2,dst=198.18.0.1,flags(-df-csum+key)),in_port(4),eth_type(0x0800), packets:3, bytes:294, used:0.2s, actions:2',
      '',
    ].join('\n');
    expect(countDatapathFlows(dump)).to.deep.equal({ arp: 1, other: 2 });
    expect(countDatapathFlows('')).to.deep.equal({ arp: 0, other: 0 });
  });
});
