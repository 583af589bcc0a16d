from chromo.cli import main

raise SystemExit(main())
