// Compact terminal tables: a box, no rules between rows.

import Table from 'cli-table3';

export function makeTable(head: string[]): Table.Table {
  return new Table({
    head,
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
}
