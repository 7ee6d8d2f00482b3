/**
 * Finds the Kubernetes API calls a program makes, statically, with the TypeScript compiler: from an
 * entrypoint, every module it loads (static and dynamic imports), and in them
 *   - typed client-node calls (CoreV1Api.readNamespacedSecret → get secrets, CustomObjectsApi with
 *     its `plural`, ...), resolved through the type checker, so an alias or a helper does not hide one;
 *   - the kinds handed to the operator's own sinks: ReconcileContext.apply (server-side apply: patch,
 *     and create when the object is missing), ReconcileContext.remove (delete), createIfMissing (create);
 *   - the ResourceTypes of informers (list, watch);
 *   - owner references with blockOwnerDeletion (update on the owner's finalizers subresource, which the
 *     OwnerReferencesPermissionEnforcement admission plugin checks).
 * A call it cannot attribute to a resource is reported as a problem, never skipped: a new kind of
 * call must be taught here (or written so that its kind can be seen) before the test passes.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export interface ApiCall {
  group: string;
  resource: string;
  verb: string;
  /** file:line of the call, relative to the repository. */
  at: string;
}

export interface ScanResult {
  calls: ApiCall[];
  problems: string[];
  /** Modules (relative to the repository) the entrypoint loads. */
  files: string[];
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** client-node's API classes → API group (the version does not matter to RBAC). */
const CLASS_GROUPS: Record<string, string> = {
  CoreV1Api: '',
  AppsV1Api: 'apps',
  BatchV1Api: 'batch',
  CoordinationV1Api: 'coordination.k8s.io',
  PolicyV1Api: 'policy',
  RbacAuthorizationV1Api: 'rbac.authorization.k8s.io',
  AutoscalingV2Api: 'autoscaling',
  AutoscalingV1Api: 'autoscaling',
  EventsV1Api: 'events.k8s.io',
  NetworkingV1Api: 'networking.k8s.io',
  ApiextensionsV1Api: 'apiextensions.k8s.io',
  AdmissionregistrationV1Api: 'admissionregistration.k8s.io',
  CertificatesV1Api: 'certificates.k8s.io',
  DiscoveryV1Api: 'discovery.k8s.io',
};

const METHOD_VERBS: Array<[RegExp, string]> = [
  [/^deleteCollection/, 'deletecollection'],
  [/^read/, 'get'],
  [/^get/, 'get'],
  [/^list/, 'list'],
  [/^create/, 'create'],
  [/^replace/, 'update'],
  [/^patch/, 'patch'],
  [/^delete/, 'delete'],
];

/** "PodDisruptionBudget" → "poddisruptionbudgets", "Policy" → "policies". */
export function pluralOf(kind: string): string {
  const k = kind.toLowerCase();
  if (k === 'endpoints') return k;
  if (k.endsWith('y') && !/[aeiou]y$/.test(k)) return `${k.slice(0, -1)}ies`;
  if (k.endsWith('s')) return `${k}es`;
  return `${k}s`;
}

/** A typed method name → verb and resource: readNamespacedPodLog → get pods/log, patchNamespacedCustomObjectStatus → patch <plural>/status. */
export function parseMethod(method: string): { verb: string; kind: string; subresource?: string } | undefined {
  const v = METHOD_VERBS.find(([re]) => re.test(method));
  if (!v) return undefined;
  let rest = method.replace(v[0], '').replace(/^Namespaced/, '').replace(/ForAllNamespaces$/, '');
  let subresource: string | undefined;
  for (const [suffix, sub] of [['Status', 'status'], ['Scale', 'scale'], ['Log', 'log'], ['Eviction', 'eviction'], ['Binding', 'binding']] as const) {
    if (rest.endsWith(suffix) && rest !== suffix && !(suffix === 'Binding' && /Role$/.test(rest.slice(0, -suffix.length)))) {
      rest = rest.slice(0, -suffix.length);
      subresource = sub;
      break;
    }
  }
  if (!rest) return undefined;
  return { verb: v[1], kind: rest, ...(subresource ? { subresource } : {}) };
}

function isClientNode(file: string): boolean {
  return file.includes(`${path.sep}@kubernetes${path.sep}client-node${path.sep}`) || file.includes('/@kubernetes/client-node/');
}

const programs = new Map<string, ts.Program>();

/** One program over all the roots (several scans share it: building it is the slow part). */
function programOf(roots: string[]): ts.Program {
  const key = [...roots].sort().join('\n');
  let program = programs.get(key);
  if (!program) {
    const config = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
    if (!config) throw new Error('cannot read tsconfig.json');
    program = ts.createProgram(roots.map((e) => path.join(ROOT, e)), config.options);
    programs.set(key, program);
  }
  return program;
}

/** The API calls of the modules `entrypoints` load (paths relative to the repository); `roots`: the program's root files, a superset of them. */
export function scanApiCalls(entrypoints: string[], roots: string[] = entrypoints): ScanResult {
  const program = programOf(roots);
  const checker = program.getTypeChecker();
  const calls: ApiCall[] = [];
  const problems: string[] = [];

  // The modules the entrypoints load, by following relative imports (static and dynamic) from them.
  const loaded = new Set<string>();
  const queue = entrypoints.map((e) => path.join(ROOT, e));
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (loaded.has(file)) continue;
    const sf = program.getSourceFile(file);
    if (!sf) throw new Error(`${file} is not in the program`);
    loaded.add(file);
    const visit = (n: ts.Node): void => {
      let spec: ts.Expression | undefined;
      if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && !(ts.isImportDeclaration(n) && n.importClause?.isTypeOnly)) spec = n.moduleSpecifier;
      if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) spec = n.arguments[0];
      if (spec && ts.isStringLiteral(spec) && spec.text.startsWith('.')) {
        queue.push(path.resolve(path.dirname(file), spec.text.replace(/\.js$/, '.ts')));
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }

  const where = (n: ts.Node): string => {
    const sf = n.getSourceFile();
    return `${path.relative(ROOT, sf.fileName)}:${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1}`;
  };
  const add = (group: string, resource: string, verbs: string[], n: ts.Node) => {
    for (const verb of verbs) calls.push({ group, resource, verb, at: where(n) });
  };

  /** The string values an expression may have (literal types, or its declaration's initializer). */
  const literals = (e: ts.Expression | undefined, depth = 0): string[] => {
    if (!e || depth > 6) return [];
    const t = checker.getTypeAtLocation(e);
    const fromType = (ty: ts.Type): string[] => (ty.isUnion() ? ty.types.flatMap(fromType) : ty.isStringLiteral() ? [ty.value] : []);
    const direct = fromType(t);
    if (direct.length > 0) return direct;
    if (ts.isIdentifier(e) || ts.isPropertyAccessExpression(e)) {
      const decl = declarationOf(e);
      if (decl && (ts.isVariableDeclaration(decl) || ts.isPropertyAssignment(decl)) && decl.initializer) return literals(decl.initializer, depth + 1);
    }
    return [];
  };

  const declarationOf = (e: ts.Node): ts.Declaration | undefined => {
    let sym = checker.getSymbolAtLocation(e);
    if (sym && sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
    return sym?.valueDeclaration ?? sym?.declarations?.[0];
  };

  /** A property of an object expression (through spreads, helper calls and variables). */
  const propertyOf = (e: ts.Expression | undefined, name: string, depth = 0): ts.Expression | undefined => {
    if (!e || depth > 6) return undefined;
    e = skipOuter(e);
    if (ts.isObjectLiteralExpression(e)) {
      for (const p of [...e.properties].reverse()) {
        if (ts.isPropertyAssignment(p) && p.name.getText() === name) return p.initializer;
        if (ts.isShorthandPropertyAssignment(p) && p.name.getText() === name) return p.name;
        if (ts.isSpreadAssignment(p)) {
          const found = propertyOf(p.expression, name, depth + 1);
          if (found) return found;
        }
      }
      return undefined;
    }
    if (ts.isIdentifier(e)) {
      const decl = declarationOf(e);
      if (decl && ts.isVariableDeclaration(decl) && decl.initializer) return propertyOf(decl.initializer, name, depth + 1);
      return undefined;
    }
    if (ts.isCallExpression(e)) {
      for (const r of returnedExpressions(e)) {
        const found = propertyOf(r, name, depth + 1);
        if (found) return found;
      }
    }
    return undefined;
  };

  const skipOuter = (e: ts.Expression): ts.Expression => {
    while (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isAwaitExpression(e) || ts.isNonNullExpression(e) || ts.isSatisfiesExpression(e)) e = e.expression;
    return e;
  };

  /** What a call to one of our own functions returns (its return statements or arrow body). */
  const returnedExpressions = (call: ts.CallExpression): ts.Expression[] => {
    const decl = checker.getResolvedSignature(call)?.declaration;
    if (!decl || !('body' in decl) || !decl.body || isClientNode(decl.getSourceFile().fileName)) return [];
    const body = decl.body as ts.Node;
    if (!ts.isBlock(body)) return [body as ts.Expression];
    const out: ts.Expression[] = [];
    const visit = (n: ts.Node): void => {
      if (ts.isReturnStatement(n) && n.expression) out.push(n.expression);
      if (!ts.isFunctionLike(n)) ts.forEachChild(n, visit);
    };
    ts.forEachChild(body, visit);
    return out;
  };

  /** The kinds an object expression may be: its `kind` literal, its client-node model type (V1Job → Job), or the kind asked of the cache. */
  const kindsOf = (e: ts.Expression, depth = 0): string[] => {
    if (depth > 6) return [];
    e = skipOuter(e);
    const kindProp = checker.getTypeAtLocation(e).getProperty('kind');
    if (kindProp) {
      const t = checker.getTypeOfSymbolAtLocation(kindProp, e);
      const values = t.isUnion() ? t.types.filter((x) => x.isStringLiteral()).map((x) => (x as ts.StringLiteralType).value) : t.isStringLiteral() ? [t.value] : [];
      if (values.length > 0) return values;
    }
    const typeName = checker.getTypeAtLocation(e).getSymbol()?.getName() ?? '';
    const model = /^V\d+(?:alpha\d+|beta\d+)?([A-Z]\w+)$/.exec(typeName);
    if (model && !['ObjectMeta', 'List'].includes(model[1]!)) return [model[1]!];
    const literal = literals(propertyOf(e, 'kind'));
    if (literal.length > 0) return literal;
    if (ts.isIdentifier(e)) {
      const decl = declarationOf(e);
      if (decl && ts.isVariableDeclaration(decl) && decl.initializer) return kindsOf(decl.initializer, depth + 1);
    }
    if (ts.isCallExpression(e)) {
      // The cache: get('Kind', ...) / listForCluster('Kind', ...).
      const callee = e.expression;
      if (ts.isPropertyAccessExpression(callee) && ['get', 'listForCluster'].includes(callee.name.text)) {
        const k = literals(e.arguments[0]);
        if (k.length > 0) return k;
      }
      return returnedExpressions(e).flatMap((r) => kindsOf(r, depth + 1));
    }
    return [];
  };

  /** kind → group and plural, learned from the ResourceTypes in the code and the typed calls. */
  const kindResources = new Map<string, { group: string; plural: string }>();
  const pendingKinds: Array<{ kind: string; verbs: string[]; node: ts.Node }> = [];

  const resourceType = (e: ts.Expression): { group: string; plural: string; kind: string } | undefined => {
    const group = literals(propertyOf(e, 'group'));
    const plural = literals(propertyOf(e, 'plural'));
    const kind = literals(propertyOf(e, 'kind'));
    if (group.length === 1 && plural.length === 1 && kind.length === 1) return { group: group[0]!, plural: plural[0]!, kind: kind[0]! };
    return undefined;
  };

  const parameterOfEnclosing = (e: ts.Expression): boolean => {
    const decl = ts.isIdentifier(e) ? declarationOf(e) : undefined;
    return !!decl && ts.isParameter(decl);
  };

  for (const file of loaded) {
    const sf = program.getSourceFile(file)!;
    const visit = (n: ts.Node): void => {
      // Every object literal shaped like a ResourceType ({group, version, plural, kind}) is one the
      // informers watch (owned-kinds.ts, optional-kinds.ts); it also teaches kind → plural.
      if (ts.isObjectLiteralExpression(n)) {
        const names = n.properties.map((p) => p.name?.getText());
        if (['group', 'version', 'plural', 'kind'].every((k) => names.includes(k))) {
          const rt = resourceType(n);
          if (rt) {
            kindResources.set(rt.kind, { group: rt.group, plural: rt.plural });
            add(rt.group, rt.plural, ['list', 'watch'], n);
          } else problems.push(`${where(n)}: a ResourceType whose group, plural and kind are not literals`);
        }
        if (names.includes('blockOwnerDeletion')) {
          const init = propertyOf(n, 'blockOwnerDeletion');
          if (init && init.kind === ts.SyntaxKind.TrueKeyword) {
            const kinds = literals(propertyOf(n, 'kind'));
            if (kinds.length === 0) problems.push(`${where(n)}: an owner reference blocking deletion whose kind is not a literal`);
            for (const kind of kinds) pendingKinds.push({ kind: `${kind}/finalizers`, verbs: ['update'], node: n });
          }
        }
      }
      if (ts.isCallExpression(n) || ts.isNewExpression(n)) classify(n);
      ts.forEachChild(n, visit);
    };
    const rel = path.relative(ROOT, sf.fileName);
    type Call = ts.CallExpression | ts.NewExpression;
    const customObjects = (n: Call, method: string, args: readonly ts.Expression[]): void => {
      const parsed = parseMethod(method.replace('CustomObject', 'X'));
      const group = literals(propertyOf(args[0], 'group'));
      const plural = literals(propertyOf(args[0], 'plural'));
      if (!parsed || group.length === 0 || plural.length === 0) {
        problems.push(`${where(n)}: CustomObjectsApi.${method} with a group or plural that is not a literal`);
        return;
      }
      for (const g of group) for (const p of plural) add(g, parsed.subresource ? `${p}/${parsed.subresource}` : p, [parsed.verb], n);
    };
    const typedApi = (n: Call, cls: string, method: string): void => {
      const parsed = parseMethod(method);
      if (!parsed || (method.startsWith('get') && !method.includes('Namespaced'))) {
        // getAPIResources: discovery, which every authenticated user may read.
        if (method !== 'getAPIResources') problems.push(`${where(n)}: ${cls}.${method} is not a call this scanner understands`);
        return;
      }
      const plural = pluralOf(parsed.kind);
      add(CLASS_GROUPS[cls]!, parsed.subresource ? `${plural}/${parsed.subresource}` : plural, [parsed.verb], n);
    };
    const clientNode = (n: Call, owner: string, method: string, args: readonly ts.Expression[]): void => {
      if (method === 'constructor') return;
      const cls = owner.replace(/^(Object|Promise|Observable)/, '');
      if (cls === 'CustomObjectsApi') return customObjects(n, method, args);
      if (cls in CLASS_GROUPS) return typedApi(n, cls, method);
      if (cls === 'KubernetesObjectApi') {
        // Generic calls: their kind is that of the object handed in; only pass-throughs of a sink's parameter are allowed.
        const generic = ['create', 'patch', 'replace', 'delete', 'read', 'list'].includes(method);
        if (generic && (!args[0] || !parameterOfEnclosing(skipOuter(args[0])))) problems.push(`${where(n)}: KubernetesObjectApi.${method} outside the apply/create/delete helpers`);
        return;
      }
      if (cls.endsWith('Api')) problems.push(`${where(n)}: ${cls}.${method}: an API class this scanner has no group for`);
      if (cls === 'Watch' && method === 'watch' && !rel.endsWith('runtime/informer.ts')) problems.push(`${where(n)}: a watch outside the informer`);
    };
    /** A call handing an object to the operator's own writers: its kind decides the resource. */
    const sink = (n: Call, verbs: string[], obj: ts.Expression | undefined, kindArg?: ts.Expression): void => {
      if (!obj) return;
      if (!kindArg && parameterOfEnclosing(skipOuter(obj))) return; // a pass-through (its callers are scanned)
      const kinds = kindArg ? literals(kindArg) : kindsOf(obj);
      if (kinds.length === 0 && !(kindArg && parameterOfEnclosing(skipOuter(kindArg)))) problems.push(`${where(n)}: cannot tell which kind ${n.getText().slice(0, 80)} writes`);
      for (const kind of kinds) pendingKinds.push({ kind, verbs, node: n });
    };
    const HELPERS: Record<string, [verbs: string[], objectArg: number]> = { createIfMissing: [['create'], 1], applyIfChanged: [['patch', 'create'], 1], deleteIfExists: [['delete'], 1] };
    const ours = (n: Call, owner: string, method: string, declFile: string, args: readonly ts.Expression[]): void => {
      if (owner === 'ReconcileContext' && method === 'apply') return sink(n, ['patch', 'create'], args[1], args[0]);
      if (owner === 'ReconcileContext' && method === 'remove') return sink(n, ['delete'], args[0]);
      const helper = HELPERS[method];
      if (helper && declFile.endsWith('runtime/apply.ts')) return sink(n, helper[0], args[helper[1]]);
      // The informer lists its ResourceType (counted above); optional-kinds.ts reads discovery documents.
      if (method === 'getJson' && declFile.endsWith('runtime/raw-request.ts') && !rel.endsWith('runtime/informer.ts') && !rel.endsWith('controller/optional-kinds.ts')) {
        problems.push(`${where(n)}: a raw GET this scanner cannot attribute`);
      }
    };
    const classify = (n: Call): void => {
      const decl = checker.getResolvedSignature(n)?.declaration;
      if (!decl || ts.isJSDocSignature(decl)) return;
      const declFile = decl.getSourceFile().fileName;
      const method = decl.name && ts.isIdentifier(decl.name) ? decl.name.text : ts.isConstructorDeclaration(decl) ? 'constructor' : '';
      const owner = ts.isClassDeclaration(decl.parent) || ts.isInterfaceDeclaration(decl.parent) ? (decl.parent.name?.text ?? '') : '';
      const args = n.arguments ?? [];
      if (isClientNode(declFile)) clientNode(n, owner, method, args);
      else if (declFile.startsWith(path.join(ROOT, 'src'))) ours(n, owner, method, declFile, args);
    };
    visit(sf);
  }

  for (const { kind, verbs, node } of pendingKinds) {
    const [base, sub] = kind.split('/') as [string, string | undefined];
    const r = kindResources.get(base);
    if (!r) {
      problems.push(`${where(node)}: kind ${base} has no ResourceType in the code (group and plural unknown)`);
      continue;
    }
    add(r.group, sub ? `${r.plural}/${sub}` : r.plural, verbs, node);
  }
  return { calls, problems, files: [...loaded].map((f) => path.relative(ROOT, f)).sort() };
}
