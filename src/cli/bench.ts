export async function benchCommand(_argv: string[]): Promise<void> {}
