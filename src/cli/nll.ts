export const NLL_HELP = '';
export async function nllCommand(_argv: string[]): Promise<void> {}
