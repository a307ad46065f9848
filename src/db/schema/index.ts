export * from './clients';
export * from './jobs';
export * from './specs';
export * from './skills';
export * from './directory';
export * from './webhooks';
