"""What each case shows (masked), captured by ``tests.compat.capture``.

``ORIGINAL``: against enact 0.4.15. ``OURS``: against this enact, for the cases
that differ on purpose (``cases.DIFFERENCES``)."""

ORIGINAL = {'contexts': 'none: None\n'
             'depths: (1, 2, True)\n'
             'top level: None\n'
             'threads: [True, None]\n'
             'derived: True\n'
             'unregistered: raised an instance of the expected classes: [True]\n'
             'no current: raised an instance of the expected classes: [True]\n'
             'twice: raised an instance of the expected classes: [True]\n'
             "strict thread: ['refused']\n"
             'async: True\n',
 'custom_ref_type_store': 'packed ref: True\n'
                          'unpacked: True\n'
                          "ref type: 'JsonPackedRef'\n"
                          'has: True\n'
                          'checkout: True\n'
                          'fresh copy: True\n',
 'difference_default_store': 'Store() keeps objects in memory: True\n',
 'difference_exception_summaries': '->refuse() raised no\n',
 'difference_function_names': 'summary names the function: False\n',
 'difference_identical_requests': 'one answer answers all: True\n',
 'difference_modules_must_be_registered': 'checkout of an unregistered module: no error\n',
 'difference_refs_hold_digests': 'digest of a value holding a made-up ref: no error\n'
                                 'commit of a made-up ref: no error\n',
 'difference_refs_remember_their_store': 'checkout after editing a checkout, no store: raised '
                                         'NoActiveContext\n'
                                         '<escaped: NoActiveContext>\n',
 'difference_rewind_after_the_block': 'rewind and replay after the block: raised NoActiveContext\n'
                                      'checkout after the block: no error\n',
 'difference_true_and_one': '[True] and [1] share a digest: True\n'
                            'fields True and 1 share a digest: True\n'
                            '1 and 1.0 share a digest: False\n'
                            'True comes back as True: True\n',
 'distributions_and_utils': "by path: DistributionKey(name='foo', version='1.0')\n"
                            'elsewhere: None\n'
                            'key: True\n'
                            'cached: (2, 2, [1])\n'
                            'recomputed: (4, [1, 2])\n',
 'exception_resource_subclass': "type: 'ValueErrorResource'\n"
                                "args: ('negative', -2)\n"
                                'str: "(\'negative\', -2)"\n'
                                'successful: False\n'
                                "checked out: ('ValueErrorResource', ('again',))\n"
                                "fields: ['args']\n"
                                'raise base: raised ExceptionResource\n'
                                'registered: True\n',
 'exceptions_replay_and_overrides': "raised: 'Failed'\n"
                                    'children: 4\n'
                                    'overridden: 106\n'
                                    'replayed: 106\n'
                                    'non-strict mismatch: raised an instance of the expected '
                                    'classes: [True]\n'
                                    'strict mismatch: raised an instance of the expected classes: '
                                    '[True]\n'
                                    'edited record: 106\n'
                                    'replay equal: True\n'
                                    'rewind: 8\n'
                                    'wrapped native: raised an instance of the expected classes: '
                                    '[False]\n',
 'field_values_and_resource_dicts': "dict type: 'ResourceDict'\n"
                                    'type info: True\n'
                                    "w: ('ResourceDict', True)\n"
                                    'rebuilt: (1, 2)\n'
                                    'same digest: True\n'
                                    'json round trip: True\n'
                                    "walk: ['Holder', 'Holder']\n"
                                    "walk dicts: ['Holder', 'Holder']\n",
 'functions_and_methods': "output: '3'\n"
                          'invokable: True\n'
                          "async: '4'\n"
                          'method: (1, 1)\n'
                          'method replay: (1, 0)\n'
                          'bound argument: 10\n'
                          'argument: (Counter(calls=5), True)\n'
                          'method ref: (7, 8)\n'
                          "unregistered: ['3']\n"
                          'replay unregistered: raised an instance of the expected classes: '
                          '[True]\n',
 'input_requests': "for value: 'foo'\n"
                   "requested: <class 'str'>\n"
                   "for value: 'bar'\n"
                   "requested: <class 'str'>\n"
                   "output: 'bish'\n"
                   "children: ['bar', 'bish']\n"
                   'added: 8\n'
                   "context: ('Context', <class 'str'>, 'x')\n"
                   'outside: raised an instance of the expected classes: [True]\n',
 'invocation_generator': 'send before next: raised an instance of the expected classes: [True]\n'
                         'send None first: raised an instance of the expected classes: [True]\n'
                         'complete: False\n'
                         'complete: False\n'
                         'complete: False\n'
                         'sent: 6\n'
                         'set_input: 30\n'
                         'functions: (3, [1, 2])\n',
 'invocation_summary': "->greet_all(['ann', 'bob'], punctuation=?) = hi ann hi bob?\n"
                       "  ->Greet(greeting='hi')(ann) = hi ann\n"
                       "  ->Greet(greeting='hi')(bob) = hi bob\n"
                       '->greet_all(...) \n'
                       "  ->Greet(greeting='hi')(...) \n"
                       "  ->Greet(greeting='hi')(...) \n"
                       "  ->greet_all(['ann', 'bob'], punctuation=?) incomplete\n"
                       "    ->Greet(greeting='hi')(ann) = hi ann\n",
 'module_paths': 'acyclic: []\n'
                 'enact.acyclic attribute: True\n'
                 'contexts: []\n'
                 'enact.contexts attribute: True\n'
                 'digests: []\n'
                 'enact.digests attribute: True\n'
                 'distribution_registry: []\n'
                 'enact.distribution_registry attribute: True\n'
                 'function_wrappers: []\n'
                 'enact.function_wrappers attribute: True\n'
                 'interfaces: []\n'
                 'enact.interfaces attribute: True\n'
                 'invocation_generators: []\n'
                 'enact.invocation_generators attribute: True\n'
                 'invocations: []\n'
                 'enact.invocations attribute: True\n'
                 'pretty_print: []\n'
                 'enact.pretty_print attribute: True\n'
                 'references: []\n'
                 'enact.references attribute: True\n'
                 'registration: []\n'
                 'enact.registration attribute: True\n'
                 'resource_digests: []\n'
                 'enact.resource_digests attribute: True\n'
                 'resource_registry: []\n'
                 'enact.resource_registry attribute: True\n'
                 'serialization: []\n'
                 'enact.serialization attribute: True\n'
                 'type_inference: []\n'
                 'enact.type_inference attribute: True\n'
                 'type_wrappers: []\n'
                 'enact.type_wrappers attribute: True\n'
                 'types: []\n'
                 'enact.types attribute: True\n'
                 'utils: []\n'
                 'enact.utils attribute: True\n'
                 'version: []\n'
                 'enact.version attribute: True\n'
                 'top level: []\n'
                 'version is a str: True\n',
 'pformat': 'None\n'
            '--\n'
            'True\n'
            '--\n'
            'False\n'
            '--\n'
            '42\n'
            '--\n'
            '3.14\n'
            '--\n'
            '<5 bytes>\n'
            '--\n'
            "'hello'\n"
            '--\n'
            '[\n'
            '  1\n'
            '  2\n'
            '  3]\n'
            '--\n'
            '{\n'
            '  "a": 1\n'
            '  "b": 2}\n'
            '--\n'
            'TupleWrapper:\n'
            '  value:\n'
            '    [\n'
            '      1\n'
            '      2\n'
            '      3]\n'
            '--\n'
            '[]\n'
            '--\n'
            '{}\n'
            '--\n'
            "Pair(a=1, b='x')\n"
            '--\n'
            'Pair:\n'
            '  a: [ 1]\n'
            '  b: { "k": Pair(a=2, b=3)}\n'
            '--\n'
            '[ Pair(a=1, b=2)]\n'
            '--\n'
            'Pair\n'
            '--\n'
            'SetWrapper:\n'
            '  value:\n'
            '    [\n'
            '      1\n'
            '      2]\n'
            '--\n'
            '[\n'
            '  [ 1]\n'
            '  [\n'
            '    2\n'
            '    3]]\n'
            '--\n'
            '{\n'
            '    "a":\n'
            '        [\n'
            '            1\n'
            '            2]}\n'
            'Pair:\n'
            '  a: -> Pair(a=1, b=2)#<digest>\n'
            '  b: [ -> Pair(a=1, b=2)#<digest>]\n'
            'Pair:\n'
            '  a: -> Pair(a=1, b=2)#<digest>\n'
            '  b: [ -> Pair(a=1, b=2)#<digest>]\n'
            '[\n'
            '  -> Pair(a=1, b=2)#<digest>\n'
            '  -> Pair#<digest>]\n',
 'refs_and_packing': 'packed ref: True\n'
                     'unpacked: True\n'
                     "packed type: 'PackedResource'\n"
                     'same for equal: True\n'
                     'differs: False\n'
                     'not a str: raised an instance of the expected classes: [True]\n'
                     'id round trip: True\n'
                     "wrapped int: 'IntWrapper'\n"
                     'unpack int: 1\n'
                     'links: True\n'
                     'none verifies: True\n'
                     'modify: None\n'
                     'modified: 10\n'
                     'is cached: True\n',
 'register_undecorated_subclasses': "fields: ([], ['x', 'y'])\n"
                                    'equal: (True, True)\n'
                                    "empty: 'Empty'\n"
                                    'point3: True\n'
                                    "foreign: 'Foreign'\n"
                                    'no arg: 3\n'
                                    'async no arg: 4\n'
                                    'not a resource: raised an instance of the expected classes: '
                                    '[True]\n',
 'registration_checks_call_signatures': 'TooMany: raised an instance of the expected classes: '
                                        '[True]\n'
                                        'KeywordOnly: raised an instance of the expected classes: '
                                        '[True]\n'
                                        'Static: raised an instance of the expected classes: '
                                        '[True]\n'
                                        "typed: (<class 'int'>, <class 'str'>)\n"
                                        'untyped: (None, None)\n',
 'registry_and_wrapping': "wrap None: ('NoneWrapper', True, True)\n"
                          "wrap 1: ('IntWrapper', True, True)\n"
                          "wrap 1.5: ('FloatWrapper', True, True)\n"
                          "wrap 'a': ('StrWrapper', True, True)\n"
                          "wrap b'ab': ('BytesWrapper', True, True)\n"
                          "wrap [1, 2]: ('ListWrapper', True, True)\n"
                          "wrap {'k': 1}: ('DictWrapper', True, True)\n"
                          'nested: True\n'
                          'types: True\n'
                          "types back: [<class 'int'>, <class 'str'>]\n"
                          "type wrapper: 'ResourceTypeWrapper'\n"
                          'unregistered type: raised an instance of the expected classes: [True]\n'
                          'unregistered value: raised an instance of the expected classes: [True]\n'
                          'lookup: True\n'
                          'register int: raised an instance of the expected classes: [True]\n'
                          'lookup missing: raised an instance of the expected classes: [True]\n'
                          'function wrapper: True\n'
                          'function back: True\n'
                          'method wrapper: True\n'
                          'method back: (True, True)\n',
 'retry_counts': 'first run: 2\n'
                 'replay: raised an instance of the expected classes: [True]\n'
                 'after replay: 3\n'
                 'parent: 11\n'
                 'parent replay: (11, 5)\n',
 'seed_example_after_the_block': '->roll_sum(2) = 7\n'
                                 '  ->roll_die(6) = 2\n'
                                 '  ->roll_die(6) = 5\n'
                                 'outputs: [2, 5]\n'
                                 'input: [2]\n'
                                 'output: 7\n',
 'store_queries': 't1: True\n'
                  't2: True\n'
                  't3: None\n'
                  "graph: [('a', []), ('b', ['a']), ('c', ['a', 'b']), ('fake', None)]\n"
                  'depth: 4\n'
                  'requirements: True\n'
                  'no distribution: raised an instance of the expected classes: [True]\n'
                  'distributions: True\n'
                  'dangling: raised an instance of the expected classes: [True]\n'
                  "stored types: {'x': None, 'y': None}\n",
 'typed_invokable_without_dataclass': 'wrong output: raised an instance of the expected classes: '
                                      '[True]\n'
                                      'wrong input: raised an instance of the expected classes: '
                                      '[True]\n'
                                      "right: '7'\n"
                                      "types: (<class 'int'>, <class 'str'>)\n"
                                      'fields: []\n'
                                      'equal: True\n'
                                      'registered: True\n'
                                      "output: '5'\n"
                                      "invokable: 'Right'\n",
 'types_and_inference': "json: ('int', True)\n"
                        "json: ({'list': {'list': 'int'}}, True)\n"
                        "json: ({'dict': 'str'}, True)\n"
                        "json: ({'optional': ['int', 'none']}, True)\n"
                        "json: ('resource', True)\n"
                        "pformat: ['int', 'list[list[int]]', 'dict[str]', 'optional[int, none]']\n"
                        "<class 'int'>: Int()\n"
                        'typing.List[typing.List[int]]: List(value_type=List(value_type=Int()))\n'
                        'typing.Dict[str, int]: Dict(value_type=Int())\n'
                        'typing.Optional[int]: Union(value_types=(Int(), NoneType()))\n'
                        'typing.Dict[int, int]: None\n'
                        'typing.Union: None\n'
                        "<class 'list'>: List(value_type=None)\n"
                        'strict: raised an instance of the expected classes: [True]\n'
                        "to python: [<class 'int'>, <class 'list'>]\n"
                        'from python: Bytes()\n'
                        "fields: ['int', 'list[str]']\n"
                        'descriptor value: List(value_type=Int())\n'}

OURS = {'difference_default_store': 'Store() keeps objects in memory: False\n',
 'difference_exception_summaries': '->refuse() raised Refused: no\n',
 'difference_function_names': 'summary names the function: True\n',
 'difference_identical_requests': 'one answer answers all: False\n',
 'difference_modules_must_be_registered': 'checkout of an unregistered module: raised '
                                          'UnregisteredResource\n',
 'difference_refs_hold_digests': 'digest of a value holding a made-up ref: raised FieldTypeError\n'
                                 'commit of a made-up ref: raised FieldTypeError\n',
 'difference_refs_remember_their_store': 'checkout after editing a checkout, no store: no error\n'
                                         'checkouts are copies: True\n',
 'difference_rewind_after_the_block': 'rewind and replay after the block: no error\n'
                                      'checkout after the block: no error\n',
 'difference_true_and_one': '[True] and [1] share a digest: False\n'
                            'fields True and 1 share a digest: False\n'
                            '1 and 1.0 share a digest: False\n'
                            'True comes back as True: True\n'}
