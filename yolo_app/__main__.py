from yolo_app.cli import main

raise SystemExit(main())
