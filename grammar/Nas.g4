// Nas.g4 -- the grammar of the .nas search-space language.
// The parse tree is turned into the owned AST (compiler/frontend/ast.h) right after
// parsing; nothing downstream sees ANTLR types. See docs/language.md.
grammar Nas;

file        : item* EOF ;
item        : importDecl | constDecl | moduleDecl | networkDecl ;

importDecl  : 'import' STRING ';' ;
constDecl   : 'let' IDENT '=' expr ';' ;
moduleDecl  : 'module' IDENT '(' paramList? ')' block ;
networkDecl : 'network' IDENT '(' paramList? ')' block ;

paramList   : param (',' param)* ','? ;
param       : IDENT ':' typeRef ('=' expr)? ;
typeRef     : 'tensor' ('[' exprList ']')?    # tensorType
            | IDENT                           # namedType
            ;

block       : '{' stmt* '}' ;
stmt        : 'let' IDENT '=' expr ';'                         # letStmt
            | IDENT '=' expr ';'                               # assignStmt
            | 'if' expr block ('else' (ifStmt | block))?       # ifStmtAlt
            | 'for' IDENT 'in' expr block                      # forStmt
            | 'return' expr ';'                                # returnStmt
            | 'assert' expr (',' expr)? ';'                    # assertStmt
            | expr ';'                                         # exprStmt
            ;
ifStmt      : 'if' expr block ('else' (ifStmt | block))? ;

expr        : primary                                                  # primaryExpr
            | expr '(' argList? ')'                                    # callExpr
            | expr '[' expr ']'                                        # indexExpr
            | expr '[' expr? ':' expr? ']'                             # sliceExpr
            | op=('-' | '!' | 'not') expr                              # unaryExpr
            | expr op=('*' | '/' | '%') expr                    # mulExpr
            | expr op=('+' | '-') expr                                 # addExpr
            | expr op=('<' | '<=' | '>' | '>=') expr                   # cmpExpr
            | expr op=('==' | '!=') expr                               # eqExpr
            | expr 'in' expr                                           # inExpr
            | expr op=('&&' | 'and') expr                              # andExpr
            | expr op=('||' | 'or') expr                               # orExpr
            | <assoc=right> expr '?' expr ':' expr                     # condExpr
            ;

primary     : INT                                                      # intLit
            | FLOAT                                                    # floatLit
            | STRING                                                   # stringLit
            | ('true' | 'false')                                       # boolLit
            | IDENT                                                    # nameRef
            | '(' expr ')'                                             # parenExpr
            | '[' exprList? ']'                                        # listLit
            | '[' expr 'for' IDENT 'in' expr ('if' expr)? ']'          # listComp
            | kw=('choice' | 'join') STRING? ('(' argList? ')')? '{' candidates? '}' # choiceExpr
            ;

candidates  : candidate (',' candidate)* ','? ;
candidate   : candName ':' expr                                        # namedCandidate
            | 'for' IDENT 'in' expr '{' candidates? '}'                # forCandidates
            ;
candName    : IDENT | STRING | '(' expr ')' ;

exprList    : expr (',' expr)* ','? ;
argList     : arg (',' arg)* ','? ;
arg         : (IDENT '=')? expr ;

INT         : [0-9]+ ;
FLOAT       : [0-9]+ '.' [0-9]* ([eE] [+-]? [0-9]+)?
            | [0-9]+ [eE] [+-]? [0-9]+
            | '.' [0-9]+ ([eE] [+-]? [0-9]+)? ;
STRING      : '"' (~["\\\r\n] | '\\' .)* '"' ;
IDENT       : [a-zA-Z_] [a-zA-Z_0-9]* ;
// `//` starts a comment, so integer division is `/` on two ints (see docs/language.md).
LINE_COMMENT: ('//' | '#') ~[\r\n]* -> skip ;
BLOCK_COMMENT: '/*' .*? '*/' -> skip ;
WS          : [ \t\r\n\f]+ -> skip ;
ANY         : . ;
