export * from './clients';
export * from './jobs';
