//! The only module with `unsafe`: libxml2 parsing, tree access and C14N through raw bindings.
//!
//! Everything here exposes a safe API whose lifetimes tie every node to its [`Document`]. The
//! document is never mutated after parsing, so node pointers stay valid for the document's life.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::marker::PhantomData;
use std::ptr;
use std::sync::Once;

use libxml::bindings as b;

/// libxml2's structured error record, declared here because the crate's binding of the handler
/// type lacks `extern "C"` (calling through it would be undefined behaviour).
type StructuredErrorFn = unsafe extern "C" fn(user: *mut c_void, error: *mut b::_xmlError);

extern "C" {
    fn xmlSetStructuredErrorFunc(ctx: *mut c_void, handler: Option<StructuredErrorFn>);
}

thread_local! {
    /// First error libxml2 reported on this thread since the last [`take_error`]. libxml2's error
    /// handlers are per thread; without one it prints every rejected input to stderr.
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Line and column (1-based) of that first error.
    static LAST_POSITION: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
    static HANDLER_SET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

unsafe extern "C" fn capture_error(_user: *mut c_void, error: *mut b::_xmlError) {
    // SAFETY: libxml2 passes a valid error record (or null) that lives for this call; `message`
    // is a NUL-terminated C string or null.
    let (message, position) = unsafe {
        if error.is_null() || (*error).message.is_null() {
            return;
        }
        let line = (*error).line;
        let text = CStr::from_ptr((*error).message).to_string_lossy();
        // int2 is the column for parser errors.
        let position = (usize::try_from(line).unwrap_or(0), usize::try_from((*error).int2).unwrap_or(0));
        (format!("line {line}: {}", text.trim_end()), position)
    };
    LAST_ERROR.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            *slot = Some(message);
            LAST_POSITION.with(|last| last.set(position));
        }
    });
}

fn prepare_thread() {
    static INIT: Once = Once::new();
    // SAFETY: xmlInitParser must run once before threads use the parser; Once guarantees that.
    INIT.call_once(|| unsafe { b::xmlInitParser() });
    if !HANDLER_SET.with(|set| set.replace(true)) {
        // SAFETY: installs a handler for this thread only; `capture_error` matches the C ABI.
        unsafe { xmlSetStructuredErrorFunc(ptr::null_mut(), Some(capture_error)) };
    }
    LAST_ERROR.with(|slot| slot.borrow_mut().take());
    LAST_POSITION.with(|last| last.set((0, 0)));
}

fn take_error() -> Option<ParseError> {
    let message = LAST_ERROR.with(|slot| slot.borrow_mut().take())?;
    let (line, column) = LAST_POSITION.with(|last| last.replace((0, 0)));
    Some(ParseError { message, line, column })
}

/// libxml2's first error for a refused document, and where in the input it stopped (1-based
/// line and column; 0 when libxml2 did not say).
#[derive(Debug)]
pub struct ParseError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// A parsed document. Not `Send`: libxml2 documents belong to the thread that parsed them.
pub struct Document {
    doc: *mut b::_xmlDoc,
    _not_send: PhantomData<*mut ()>,
}

impl Drop for Document {
    fn drop(&mut self) {
        // SAFETY: `doc` came from xmlReadMemory, is non-null and is freed exactly once here.
        unsafe { b::xmlFreeDoc(self.doc) };
    }
}

/// Parser options for hostile input: no recovery (a malformed document is an error, never a
/// silently truncated tree), no network, CDATA merged into text (C14N does the same).
const PARSE_OPTIONS: c_int = (b::xmlParserOption_XML_PARSE_NONET | b::xmlParserOption_XML_PARSE_NOCDATA) as c_int;

impl Document {
    /// Parses `bytes` (already checked to be UTF-8 without a DOCTYPE). Returns libxml2's first
    /// error on failure.
    pub fn parse(bytes: &[u8]) -> Result<Document, ParseError> {
        let too_large = || ParseError { message: "document too large".to_string(), line: 0, column: 0 };
        let len = c_int::try_from(bytes.len()).map_err(|_| too_large())?;
        prepare_thread();
        // SAFETY: the buffer is valid for `len` bytes for the duration of the call; URL and
        // encoding may be null; libxml2 copies what it keeps.
        let doc =
            unsafe { b::xmlReadMemory(bytes.as_ptr().cast::<c_char>(), len, ptr::null(), ptr::null(), PARSE_OPTIONS) };
        let error = take_error();
        if doc.is_null() {
            return Err(error.unwrap_or_else(|| ParseError {
                message: "not well-formed XML".to_string(),
                line: 0,
                column: 0,
            }));
        }
        let document = Document { doc, _not_send: PhantomData };
        if let Some(error) = error {
            // With recovery off libxml2 returns null on errors; a non-null document with an error
            // recorded would be a recovered one, which we never accept.
            return Err(error);
        }
        Ok(document)
    }

    /// True when the document carries an internal or external DTD subset.
    pub fn has_dtd(&self) -> bool {
        // SAFETY: `doc` is a valid document for the life of `self`.
        unsafe { !(*self.doc).intSubset.is_null() || !(*self.doc).extSubset.is_null() }
    }

    /// The top-level nodes (prolog, root element, epilog).
    pub fn children(&self) -> Siblings<'_> {
        // SAFETY: `doc` is valid; `children` is null or the first top-level node.
        Siblings { next: unsafe { (*self.doc).children }, _doc: PhantomData }
    }

    /// The document element.
    pub fn root(&self) -> Option<Node<'_>> {
        // SAFETY: `doc` is valid; the result is null or a node owned by the document.
        let root = unsafe { b::xmlDocGetRootElement(self.doc) };
        Node::wrap(root)
    }

    /// Canonicalizes the subtree rooted at `apex`, leaving out the subtree rooted at `exclude`
    /// (the enveloped-signature transform), without comments.
    pub fn canonicalize<'d>(
        &'d self,
        apex: Node<'d>,
        exclude: Option<Node<'d>>,
        mode: C14nMode,
        inclusive_prefixes: &[&str],
    ) -> Result<Vec<u8>, String> {
        let mut subset = Subset { apex: apex.ptr, exclude: exclude.map_or(ptr::null_mut(), |n| n.ptr) };
        let mut out: Vec<u8> = Vec::with_capacity(4096);
        // NUL-terminated copies of the prefixes and a NULL-terminated array of pointers to them.
        let mut prefix_storage: Vec<Vec<u8>> = Vec::with_capacity(inclusive_prefixes.len());
        for prefix in inclusive_prefixes {
            if prefix.as_bytes().contains(&0) {
                return Err("NUL in InclusiveNamespaces prefix".into());
            }
            let mut owned = prefix.as_bytes().to_vec();
            owned.push(0);
            prefix_storage.push(owned);
        }
        let mut prefix_ptrs: Vec<*mut u8> = prefix_storage.iter_mut().map(|p| p.as_mut_ptr()).collect();
        prefix_ptrs.push(ptr::null_mut());
        let prefixes = if inclusive_prefixes.is_empty() { ptr::null_mut() } else { prefix_ptrs.as_mut_ptr() };
        let mode = match mode {
            C14nMode::Inclusive10 => b::xmlC14NMode_XML_C14N_1_0,
            C14nMode::Exclusive10 => b::xmlC14NMode_XML_C14N_EXCLUSIVE_1_0,
        } as c_int;
        prepare_thread();
        // SAFETY: the write callback receives `&mut out` as context and only appends the bytes
        // libxml2 hands it; `out` outlives the buffer, which is closed below before returning.
        let buffer = unsafe {
            b::xmlOutputBufferCreateIO(Some(write_to_vec), None, (&mut out as *mut Vec<u8>).cast(), ptr::null_mut())
        };
        if buffer.is_null() {
            return Err("cannot allocate C14N output buffer".into());
        }
        // SAFETY: `doc` is valid, `subset` and the prefix array outlive the call, the callback
        // only reads node pointers libxml2 gives it. The buffer is closed exactly once.
        let (rc, close_rc) = unsafe {
            let rc = b::xmlC14NExecute(
                self.doc,
                Some(is_visible),
                (&mut subset as *mut Subset).cast(),
                mode,
                prefixes,
                0,
                buffer,
            );
            (rc, b::xmlOutputBufferClose(buffer))
        };
        let error = take_error();
        if rc < 0 || close_rc < 0 {
            return Err(error.map_or_else(|| "canonicalization failed".into(), |e| e.message));
        }
        Ok(out)
    }
}

/// Which C14N algorithm to run; both without comments (the only ones the signature profile allows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum C14nMode {
    Inclusive10,
    Exclusive10,
}

struct Subset {
    apex: *mut b::_xmlNode,
    exclude: *mut b::_xmlNode,
}

unsafe extern "C" fn write_to_vec(context: *mut c_void, buffer: *const c_char, len: c_int) -> c_int {
    let Ok(count) = usize::try_from(len) else {
        return -1;
    };
    // SAFETY: `context` is the `&mut Vec<u8>` passed to xmlOutputBufferCreateIO, alive and not
    // otherwise borrowed during xmlC14NExecute; `buffer` holds `len` readable bytes.
    unsafe {
        let out = &mut *context.cast::<Vec<u8>>();
        out.extend_from_slice(std::slice::from_raw_parts(buffer.cast::<u8>(), count));
    }
    len
}

/// Node-set membership for C14N: a node is visible when it lies inside `apex` and not inside
/// `exclude`. libxml2 calls this for elements, attributes, namespace nodes (with the owning
/// element as `parent`), text, comments and PIs of the whole document.
unsafe extern "C" fn is_visible(user: *mut c_void, node: *mut b::_xmlNode, parent: *mut b::_xmlNode) -> c_int {
    // SAFETY: `user` is the `Subset` passed to xmlC14NExecute. `node` is an xmlNode, xmlAttr or
    // xmlNs; all three keep their type tag in the second pointer-sized field (libxml2 relies on
    // the same layout), and xmlNode and xmlAttr share the `parent` field position.
    unsafe {
        let subset = &*user.cast::<Subset>();
        if node.is_null() {
            return 0;
        }
        let kind = (*node.cast::<b::_xmlNs>()).type_;
        let mut cursor = if kind == b::xmlElementType_XML_NAMESPACE_DECL { parent } else { node };
        while !cursor.is_null() {
            if cursor == subset.exclude {
                return 0;
            }
            if cursor == subset.apex {
                return 1;
            }
            cursor = (*cursor).parent;
        }
        0
    }
}

/// What kind of node this is, as far as SAML processing cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Element,
    Text,
    Comment,
    ProcessingInstruction,
    EntityRef,
    Other,
}

/// A node of a [`Document`]; cheap to copy, compared by identity.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    ptr: *mut b::_xmlNode,
    _doc: PhantomData<&'a Document>,
}

impl PartialEq for Node<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.ptr == other.ptr
    }
}
impl Eq for Node<'_> {}

impl std::fmt::Debug for Node<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({})", self.local_name())
    }
}

/// Borrows a libxml2 string (always UTF-8 inside libxml2) for the document's lifetime.
///
/// # Safety
/// `p` must be null or a NUL-terminated string owned by the document that outlives `'a`.
unsafe fn borrow_str<'a>(p: *const u8) -> &'a str {
    if p.is_null() {
        return "";
    }
    // SAFETY: guaranteed by the caller; libxml2 validated the input as UTF-8 while parsing and
    // stores names and values as UTF-8, so the unchecked conversion holds.
    unsafe { std::str::from_utf8_unchecked(CStr::from_ptr(p.cast::<c_char>()).to_bytes()) }
}

impl<'a> Node<'a> {
    fn wrap(ptr: *mut b::_xmlNode) -> Option<Node<'a>> {
        (!ptr.is_null()).then_some(Node { ptr, _doc: PhantomData })
    }

    pub fn kind(self) -> NodeKind {
        // SAFETY: `ptr` is a live node of the borrowed document.
        match unsafe { (*self.ptr).type_ } {
            b::xmlElementType_XML_ELEMENT_NODE => NodeKind::Element,
            b::xmlElementType_XML_TEXT_NODE | b::xmlElementType_XML_CDATA_SECTION_NODE => NodeKind::Text,
            b::xmlElementType_XML_COMMENT_NODE => NodeKind::Comment,
            b::xmlElementType_XML_PI_NODE => NodeKind::ProcessingInstruction,
            b::xmlElementType_XML_ENTITY_REF_NODE => NodeKind::EntityRef,
            _ => NodeKind::Other,
        }
    }

    pub fn is_element(self) -> bool {
        self.kind() == NodeKind::Element
    }

    /// Local name (no prefix) of an element, or libxml2's name for other nodes.
    pub fn local_name(self) -> &'a str {
        // SAFETY: `name` is null or a string owned by the document (dictionary or node).
        unsafe { borrow_str((*self.ptr).name) }
    }

    /// Namespace URI of an element, if it has one.
    pub fn namespace(self) -> Option<&'a str> {
        // SAFETY: `ns` is null or a namespace record owned by the document.
        unsafe {
            let ns = (*self.ptr).ns;
            (!ns.is_null()).then(|| borrow_str((*ns).href))
        }
    }

    /// The prefix an element was written with (`None` for the default namespace or none).
    pub fn prefix(self) -> Option<&'a str> {
        // SAFETY: `ns` is null or a namespace record owned by the document; its `prefix` is
        // null (default namespace) or a string owned by the document.
        unsafe {
            let ns = (*self.ptr).ns;
            (!ns.is_null() && !(*ns).prefix.is_null()).then(|| borrow_str((*ns).prefix))
        }
    }

    /// The namespace declarations written on this element (`xmlns` / `xmlns:p`), as
    /// `(prefix, uri)`; `None` is the default namespace. Empty for non-elements.
    pub fn namespace_declarations(self) -> NamespaceDeclarations<'a> {
        let first = if self.is_element() {
            // SAFETY: an element's `nsDef` is null or its first namespace declaration.
            unsafe { (*self.ptr).nsDef }
        } else {
            ptr::null_mut()
        };
        NamespaceDeclarations { next: first, _doc: PhantomData }
    }

    /// True for an element with this namespace URI and local name (prefixes never matter).
    pub fn is(self, namespace: &str, local_name: &str) -> bool {
        self.is_element() && self.local_name() == local_name && self.namespace() == Some(namespace)
    }

    /// Text of a text node (empty for other kinds).
    pub fn text(self) -> &'a str {
        if self.kind() != NodeKind::Text {
            return "";
        }
        // SAFETY: a text node's `content` is null or a string owned by the document.
        unsafe { borrow_str((*self.ptr).content) }
    }

    pub fn parent(self) -> Option<Node<'a>> {
        // SAFETY: `parent` is null or a node of the same document.
        let parent = unsafe { (*self.ptr).parent };
        // The document node itself is not an element; report it as "no parent element".
        Node::wrap(parent).filter(|p| p.is_element())
    }

    pub fn children(self) -> Siblings<'a> {
        // SAFETY: `children` is null or the first child node, owned by the document. Element
        // children are never attributes (those hang off `properties`).
        Siblings { next: unsafe { (*self.ptr).children }, _doc: PhantomData }
    }

    /// Element children only.
    pub fn elements(self) -> impl Iterator<Item = Node<'a>> {
        self.children().filter(|n| n.is_element())
    }

    pub fn attributes(self) -> Attributes<'a> {
        let first = if self.is_element() {
            // SAFETY: an element's `properties` is null or its first attribute.
            unsafe { (*self.ptr).properties }
        } else {
            ptr::null_mut()
        };
        Attributes { next: first, _doc: PhantomData }
    }

    /// Value of the attribute with this local name and no namespace.
    pub fn attribute(self, name: &str) -> Option<AttrValue<'a>> {
        self.attributes().find(|a| a.namespace.is_none() && a.name == name).map(|a| a.value)
    }
}

/// Iterator over a node list.
pub struct Siblings<'a> {
    next: *mut b::_xmlNode,
    _doc: PhantomData<&'a Document>,
}

impl<'a> Iterator for Siblings<'a> {
    type Item = Node<'a>;
    fn next(&mut self) -> Option<Node<'a>> {
        let node = Node::wrap(self.next)?;
        // SAFETY: `node.ptr` is a live node; `next` is null or its next sibling.
        self.next = unsafe { (*node.ptr).next };
        Some(node)
    }
}

/// One attribute of an element.
#[derive(Clone, Copy, Debug)]
pub struct Attr<'a> {
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    /// The prefix the attribute was written with, if any.
    pub prefix: Option<&'a str>,
    pub value: AttrValue<'a>,
}

/// An attribute's value: libxml2 stores it as a list of text nodes (normally one).
#[derive(Clone, Copy, Debug)]
pub struct AttrValue<'a> {
    first: Option<Node<'a>>,
}

impl<'a> AttrValue<'a> {
    /// The value, borrowed when it is a single text node (the common case), joined otherwise.
    pub fn get(self) -> std::borrow::Cow<'a, str> {
        let Some(first) = self.first else {
            return "".into();
        };
        // SAFETY: `first.ptr` is a live node; `next` is null or another value node.
        let single = unsafe { (*first.ptr).next.is_null() };
        if single {
            return first.text().into();
        }
        let mut joined = String::new();
        let mut cursor = Some(first);
        while let Some(node) = cursor {
            joined.push_str(node.text());
            // SAFETY: as above.
            cursor = Node::wrap(unsafe { (*node.ptr).next });
        }
        joined.into()
    }
}

/// Iterator over an element's attributes.
pub struct Attributes<'a> {
    next: *mut b::_xmlAttr,
    _doc: PhantomData<&'a Document>,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attr<'a>;
    fn next(&mut self) -> Option<Attr<'a>> {
        if self.next.is_null() {
            return None;
        }
        // SAFETY: `next` is a live attribute of the document; its name, namespace and value
        // nodes are owned by the document.
        unsafe {
            let attr = &*self.next;
            self.next = attr.next;
            let namespace = (!attr.ns.is_null()).then(|| borrow_str((*attr.ns).href));
            let prefix = (!attr.ns.is_null() && !(*attr.ns).prefix.is_null()).then(|| borrow_str((*attr.ns).prefix));
            Some(Attr {
                name: borrow_str(attr.name),
                namespace,
                prefix,
                value: AttrValue { first: Node::wrap(attr.children) },
            })
        }
    }
}

/// Iterator over an element's namespace declarations.
pub struct NamespaceDeclarations<'a> {
    next: *mut b::_xmlNs,
    _doc: PhantomData<&'a Document>,
}

impl<'a> Iterator for NamespaceDeclarations<'a> {
    type Item = (Option<&'a str>, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        if self.next.is_null() {
            return None;
        }
        // SAFETY: `next` is a live namespace record of the document; `prefix` is null for the
        // default namespace, `href` is a string owned by the document.
        unsafe {
            let ns = &*self.next;
            self.next = ns.next;
            let prefix = (!ns.prefix.is_null()).then(|| borrow_str(ns.prefix));
            Some((prefix, borrow_str(ns.href)))
        }
    }
}
