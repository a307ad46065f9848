/** A small cQube event spec (date in DD/MM/YY, a unique school, a number) for upload tests. */
export const attendanceSpec = {
  program: 'attendance',
  input: {
    type: 'object',
    properties: {
      date: { type: 'date', dateFormat: 'DD/MM/YY', shouldNotNull: true },
      school_id: { type: 'string', shouldNotNull: true, unique: true },
      present: { type: 'number', shouldNotNull: true, minimum: 0 },
    },
    required: ['date', 'school_id', 'present'],
  },
};

/** `rows` rows for attendanceSpec; every `badEvery`-th (0: none) has a non-numeric `present` (NOT_A_NUMBER). */
export function attendanceCsv(rows: number, badEvery = 0): string {
  const lines = ['date,school_id,present'];
  for (let i = 1; i <= rows; i++) lines.push(`01/03/23,s${i},${badEvery && i % badEvery === 0 ? 'x' : i % 40}`);
  return `${lines.join('\n')}\n`;
}
