//#region src/disposable.ts
const disposeSymbol = Symbol.dispose ?? Symbol.for("Symbol.dispose");
const asyncDisposeSymbol = Symbol.asyncDispose ?? Symbol.for("Symbol.asyncDispose");

//#endregion
export { asyncDisposeSymbol, disposeSymbol };
